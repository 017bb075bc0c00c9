// MetricsServer: the HTTP endpoint Prometheus scrapes. Serves `/metrics` in the text
// exposition format (0.0.4): every family of a PrometheusEngineStats, then the standard
// process_* metrics (metrics/process_metrics.h). It runs civetweb directly rather than
// prometheus-cpp's Exposer, which would add its own exposer_* series (a summary whose
// quantiles are NaN before the first scrape) to ours. Exceptions of civetweb never leave
// this class.
//
// Thread-safety: Start() and the destructor from one thread; port() from any. The
// server's own threads call stats->Collect() concurrently with the engine's writes. The
// server shares ownership of `stats`, so the stats outlive every scrape.
#ifndef LAZYBLOB_METRICS_METRICS_SERVER_H_
#define LAZYBLOB_METRICS_METRICS_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "metrics/prometheus_engine_stats.h"

class CivetServer;
class CivetHandler;

namespace lazyblob {

struct MetricsServerOptions {
  // "host:port" with a numeric IPv4 host. Port 0 picks a free port (see
  // MetricsServer::port()). Loopback by default: the endpoint has no authentication.
  // "[IPv6]:port" parses, but Debian 12's civetweb is built without IPv6, so it is
  // kUnsupported with a message saying so (it would work with a civetweb that has it).
  std::string listen_address = "127.0.0.1:9150";
  int num_threads = 2;                           // HTTP worker threads
  std::shared_ptr<PrometheusEngineStats> stats;  // required
  // More families served on the same endpoint (e.g. PrometheusOriginStats); shared too.
  std::vector<std::shared_ptr<prometheus::Collectable>> more = {};

  Status Validate() const;
};

// Parses `listen_address` as MetricsServerOptions::listen_address wants it and checks that
// it can be bound now (kBusy when the port is in use, kUnsupported for IPv6 without
// support, kInvalidArgument for bad syntax). lazyblobd calls it before it opens the device.
Status CheckMetricsListenAddress(const std::string& listen_address);

class MetricsServer {
 public:
  // Binds and starts serving. A port already in use is kBusy
  // ("metrics endpoint 127.0.0.1:9150: address already in use").
  static Result<std::unique_ptr<MetricsServer>> Start(const MetricsServerOptions& options);

  ~MetricsServer();  // stops serving; in-flight scrapes finish first
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound TCP port (the real one when the options asked for port 0).
  int port() const { return port_; }

 private:
  MetricsServer() = default;

  std::shared_ptr<PrometheusEngineStats> stats_;
  std::vector<std::shared_ptr<prometheus::Collectable>> more_;
  std::unique_ptr<CivetHandler> handler_;  // outlives server_ (destroyed after it)
  std::unique_ptr<CivetServer> server_;
  int port_ = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_METRICS_METRICS_SERVER_H_
