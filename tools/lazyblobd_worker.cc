#include "tools/lazyblobd_worker.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>

#include "core/request_engine.h"
#include "metrics/metrics_server.h"
#include "metrics/prometheus_engine_stats.h"
#include "registry/registry_traces.h"
#include "store/chunk_store.h"
#include "store/trace_dir.h"
#include "tools/lazyblobd_fanotify.h"
#include "tools/lazyblobd_logging.h"
#include "tools/lazyblobd_origin.h"
#include "tools/lazyblobd_read_watch.h"
#include "tools/store_gauges_from_stats.h"
#include "transport/cachefiles_device.h"
#include "transport/sim_device.h"

namespace lazyblob {
namespace {

Result<std::unique_ptr<CacheDevice>> AdoptDevice(const DaemonConfig& config, UniqueFd fd) {
  if (!config.sim_socket.empty()) {
    LB_ASSIGN_OR_RETURN(auto d, SimDevice::Adopt(std::move(fd)));
    return std::unique_ptr<CacheDevice>(std::move(d));
  }
  LB_ASSIGN_OR_RETURN(auto d, CachefilesDevice::Adopt(std::move(fd)));
  return std::unique_ptr<CacheDevice>(std::move(d));
}

// Store gauges come from a full index scan (store/ChunkStore::Stats), so they are taken
// once the engine serves and again on SIGHUP, never on the request path.
void PublishStoreGauges(ChunkStore* store, PrometheusEngineStats& stats) {
  if (store == nullptr) return;
  auto s = store->Stats();
  if (!s.ok()) {
    spdlog::warn("store gauges not updated: {}", s.status().ToString());
    return;
  }
  stats.SetStoreGauges(StoreGaugesFrom(*s));
}

}  // namespace

int RunWorker(DaemonConfig config, WorkerLaunch launch) {
  std::shared_ptr<ChunkStore> store;  // null: an origin-only node
  if (!config.store_dir.empty()) {
    ChunkStoreOptions store_options;
    store_options.path = config.store_dir;
    store_options.hold_serving_lock = true;
    auto store_or = ChunkStore::Open(store_options);
    if (!store_or.ok()) {
      spdlog::error("opening store {}: {}", config.store_dir, store_or.status().ToString());
      return kExitFailure;
    }
    store = std::move(*store_or);
  }
  std::unique_ptr<OriginServing> origin;
  if (config.origin.enabled()) {
    auto origin_or = StartOrigin(config.origin, store.get());
    if (!origin_or.ok()) {
      spdlog::error("origin {}: {}", config.origin.registry, origin_or.status().ToString());
      return kExitFailure;
    }
    origin = std::move(*origin_or);
    spdlog::info("origin {}: fetched chunks kept in {} (at most {} bytes)", config.origin.registry,
                 config.origin.cache_dir, config.origin.cache_bytes);
  }
  // Access records: only when something would use them (recording on, or replay on).
  // With an origin, a blob without a local record is looked up in the registry (what
  // `lazyblob push` published from another node's start).
  std::unique_ptr<TraceDir> trace_dir;
  std::unique_ptr<RegistryTraces> registry_traces;
  AccessTraceStore* traces = nullptr;
  if (!config.trace_dir_base().empty() && (config.trace_record_s > 0 || config.trace_replay)) {
    trace_dir = std::make_unique<TraceDir>(config.trace_dir_base());
    traces = trace_dir.get();
    if (origin != nullptr && config.trace_replay) {
      registry_traces = std::make_unique<RegistryTraces>(trace_dir.get(), origin->client.get());
      traces = registry_traces.get();
    }
  }
  ChunkSource* source = origin != nullptr ? static_cast<ChunkSource*>(origin->source.get())
                                          : static_cast<ChunkSource*>(store.get());

  PrometheusEngineStatsOptions so;
  so.per_blob_gauge = config.metrics_blob_series > 0;
  so.max_blob_series = config.metrics_blob_series;
  so.frontend = launch.fanotify ? "fanotify" : "cachefiles";
  auto stats_or = PrometheusEngineStats::Open(so);
  if (!stats_or.ok()) {
    spdlog::error("metrics: {}", stats_or.status().ToString());
    return kExitFailure;
  }
  std::shared_ptr<PrometheusEngineStats> stats = std::move(*stats_or);
  std::unique_ptr<MetricsServer> metrics;
  if (!config.metrics_listen.empty()) {
    MetricsServerOptions mo;
    mo.listen_address = config.metrics_listen;
    mo.stats = stats;
    if (origin != nullptr) mo.more.push_back(origin->stats);
    auto m = MetricsServer::Start(mo);
    if (!m.ok()) {
      spdlog::error("metrics endpoint: {}", m.status().ToString());
      return kExitFailure;
    }
    metrics = std::move(*m);
    spdlog::info("serving /metrics on {} (port {})", config.metrics_listen, metrics->port());
  }

  if (launch.fanotify) {
    auto reload = [&]() -> std::optional<std::uint64_t> {
      Status s = ReloadConfig(&config, GivenAsFlags());
      if (!s.ok()) {
        spdlog::warn("SIGHUP: config not reloaded: {}", s.ToString());
        return std::nullopt;
      }
      ApplyLogLevel(config.log_level);
      PublishStoreGauges(store.get(), *stats);
      spdlog::info("SIGHUP: log level {}, write-ahead {} bytes", config.log_level,
                   config.write_ahead_bytes);
      return config.write_ahead_bytes;
    };
    auto ready = std::move(launch.on_ready);
    launch.on_ready = [&, ready] {
      if (ready) ready();
      PublishStoreGauges(store.get(), *stats);
    };
    return RunFanotifyWorker(config, launch, source, stats.get(), traces, reload);
  }
  auto device_or = AdoptDevice(config, std::move(launch.device_fd));
  if (!device_or.ok()) {
    spdlog::error("adopting the device fd: {}", device_or.status().ToString());
    return kExitDeviceFailed;
  }
  std::unique_ptr<CacheDevice> device = std::move(*device_or);
  for (int i = 0; i < launch.restart_count; ++i) stats->WorkerRestart();
  auto failpoint = ParseFailpoint(std::getenv(kFailpointEnv));
  if (!failpoint.ok()) {
    spdlog::error("{}", failpoint.status().message());
    return kExitUsage;
  }
  if (failpoint->kind != Failpoint::Kind::kNone) {
    spdlog::warn("{}={} is set: a test failpoint is active", kFailpointEnv,
                 std::getenv(kFailpointEnv));
  }
  // Outlives the engine (declared before it).
  ReadWatch read_watch(launch.read_journal, launch.poisoned_reads, *failpoint,
                       launch.restart_count == 0, std::move(launch.inherited_leases));
  read_watch.ExpectRedelivered(std::move(launch.unanswered_reads));
  EngineOptions eo = config.engine();
  eo.restore_on_start = launch.restore;
  eo.read_observer = &read_watch;
  eo.trace.store = traces;
  auto engine_or = RequestEngine::Start(eo, device.get(), source, stats.get());
  if (!engine_or.ok()) {
    spdlog::error("engine: {}", engine_or.status().ToString());
    // Bad options are a usage error; a failed restore is the device's.
    return engine_or.status().code() == StatusCode::kInvalidArgument ? kExitUsage
                                                                     : kExitDeviceFailed;
  }
  std::unique_ptr<RequestEngine> engine = std::move(*engine_or);
  spdlog::info("serving store {} ({} worker threads, write-ahead {} bytes, chunk cache {} bytes)",
               config.store_dir, eo.ResolvedWorkerThreads(), eo.write_ahead_bytes,
               eo.chunk_cache_bytes);
  if (launch.on_ready) launch.on_ready();
  PublishStoreGauges(store.get(), *stats);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!sigfd) {
    spdlog::error("signalfd: {}", Status::FromErrno(errno, "signalfd").ToString());
    return kExitFailure;
  }
  int code = kExitOk;
  for (;;) {
    pollfd fds[2] = {{sigfd.get(), POLLIN, 0}, {engine->failed_fd(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      code = kExitFailure;
      break;
    }
    if (fds[1].revents != 0) {
      spdlog::error("device failed: {}", engine->device_status().ToString());
      code = kExitDeviceFailed;
      break;
    }
    signalfd_siginfo si;
    if (::read(sigfd.get(), &si, sizeof si) != sizeof si) continue;
    if (si.ssi_signo == SIGHUP) {
      Status s = ReloadConfig(&config, GivenAsFlags());
      if (!s.ok()) {
        spdlog::warn("SIGHUP: config not reloaded: {}", s.ToString());
        continue;
      }
      ApplyLogLevel(config.log_level);
      engine->set_write_ahead_bytes(config.write_ahead_bytes);
      PublishStoreGauges(store.get(), *stats);
      spdlog::info("SIGHUP: log level {}, write-ahead {} bytes, store gauges refreshed",
                   config.log_level, config.write_ahead_bytes);
      continue;
    }
    spdlog::info("signal {}: finishing requests in flight", si.ssi_signo);
    // Without a supervisor nobody else escalates: SIGALRM (default action: terminate)
    // ends a stop that hangs.
    if (launch.stop_alarm_s > 0) ::alarm(static_cast<unsigned>(launch.stop_alarm_s));
    break;
  }
  engine->Stop();
  engine.reset();
  origin.reset();  // commits the fetched chunks still queued
  spdlog::info("worker exits ({})", code);
  return code;
}

}  // namespace lazyblob
