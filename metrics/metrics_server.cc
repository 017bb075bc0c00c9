#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>

#include <CivetServer.h>
#include <civetweb.h>

#include "core/unique_fd.h"
#include "metrics/process_metrics.h"
#include "prometheus/text_serializer.h"

namespace lazyblob {
namespace {

struct ParsedAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int port = 0;
};

// "1.2.3.4:80" or "[::1]:80" -> a socket address.
Result<ParsedAddress> ParseListenAddress(const std::string& text) {
  const auto bad = [&] {
    return InvalidArgument("metrics endpoint '" + text +
                           "': want host:port with a numeric IPv4 host or [IPv6]:port");
  };
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad();
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return bad();
  }
  ParsedAddress out;
  out.port = port;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<std::uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) return bad();
    if (mg_check_feature(8) == 0) {
      return Unsupported("metrics endpoint '" + text +
                         "': IPv6 is not supported: the civetweb library this lazyblobd uses "
                         "(Debian 12's libcivetweb1) is built without IPv6; listen on an IPv4 "
                         "address such as 127.0.0.1:" +
                         port_text);
    }
    out.len = sizeof(sockaddr_in6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&out.addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<std::uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) return bad();
    out.len = sizeof(sockaddr_in);
  }
  return out;
}

// civetweb reports a failed bind only as an exception without errno, so bind once
// ourselves first to tell "in use" from other failures.
Status ProbeBind(const std::string& text, const ParsedAddress& a) {
  UniqueFd fd(::socket(a.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "metrics endpoint " + text + ": socket");
  const int one = 1;
  // civetweb sets SO_REUSEADDR too: match it so TIME_WAIT leftovers do not fail the probe.
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a.addr), a.len) != 0) {
    const int err = errno;
    if (err == EADDRINUSE) {
      return Status(StatusCode::kBusy, "metrics endpoint " + text + ": address already in use",
                    err);
    }
    return Status::FromErrno(err, "metrics endpoint " + text);
  }
  return Status::Ok();
}

// GET /metrics: every family of the stats, then the process_* metrics.
class MetricsHandler final : public CivetHandler {
 public:
  MetricsHandler(std::shared_ptr<PrometheusEngineStats> stats,
                 std::vector<std::shared_ptr<prometheus::Collectable>> more)
      : stats_(std::move(stats)), more_(std::move(more)) {}

  bool handleGet(CivetServer* server, mg_connection* conn) override {
    std::vector<prometheus::MetricFamily> families = stats_->Collect();
    for (const auto& c : more_) {
      for (auto& f : c->Collect()) families.push_back(std::move(f));
    }
    for (auto& f : ProcessMetricFamilies()) families.push_back(std::move(f));
    const std::string body = prometheus::TextSerializer().Serialize(families);
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\n"
              "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
              "Content-Length: %zu\r\n"
              "Connection: close\r\n\r\n",
              body.size());
    mg_write(conn, body.data(), body.size());
    return true;
  }

 private:
  const std::shared_ptr<PrometheusEngineStats> stats_;
  const std::vector<std::shared_ptr<prometheus::Collectable>> more_;
};

}  // namespace

Status CheckMetricsListenAddress(const std::string& listen_address) {
  LB_ASSIGN_OR_RETURN(ParsedAddress parsed, ParseListenAddress(listen_address));
  if (parsed.port != 0) LB_RETURN_IF_ERROR(ProbeBind(listen_address, parsed));
  return Status::Ok();
}

Status MetricsServerOptions::Validate() const {
  if (stats == nullptr) return InvalidArgument("metrics server: no stats to serve");
  if (num_threads < 1) return InvalidArgument("metrics server: num_threads must be >= 1");
  return ParseListenAddress(listen_address).status();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const MetricsServerOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  LB_RETURN_IF_ERROR(CheckMetricsListenAddress(options.listen_address));

  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->more_ = options.more;
  server->handler_ = std::make_unique<MetricsHandler>(options.stats, options.more);
  try {
    const std::vector<std::string> civet_options = {
        "listening_ports", options.listen_address, "num_threads",
        std::to_string(options.num_threads),
        // A scraper that stalls mid-request must not hold a thread forever.
        "request_timeout_ms", "10000"};
    server->server_ = std::make_unique<CivetServer>(civet_options);
    server->server_->addHandler("/metrics", server->handler_.get());
    const std::vector<int> ports = server->server_->getListeningPorts();
    if (ports.empty()) return Internal("metrics endpoint " + options.listen_address + ": no port");
    server->port_ = ports.front();
  } catch (const std::exception& e) {
    // Lost a race for the port after the probe, or civetweb refused the address.
    return Busy("metrics endpoint " + options.listen_address + ": cannot listen (" + e.what() +
                ")");
  }
  return server;
}

MetricsServer::~MetricsServer() {
  // Stop serving (joins civetweb's threads) before the handler it calls goes away.
  if (server_) server_->close();
}

}  // namespace lazyblob
