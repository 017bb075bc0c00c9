#include "tools/lazyblobd_worker.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>

#include "core/log.h"
#include "core/request_engine.h"
#include "metrics/metrics_server.h"
#include "metrics/prometheus_engine_stats.h"
#include "store/chunk_store.h"
#include "tools/lazyblobd_origin.h"
#include "transport/cachefiles_device.h"
#include "transport/sim_device.h"

namespace lazyblob {
namespace {

void SpdlogSink(LogLevel level, std::string_view message) {
  switch (level) {
    case LogLevel::kDebug:
      spdlog::debug("{}", message);
      break;
    case LogLevel::kInfo:
      spdlog::info("{}", message);
      break;
    case LogLevel::kWarn:
      spdlog::warn("{}", message);
      break;
    case LogLevel::kError:
      spdlog::error("{}", message);
      break;
    case LogLevel::kOff:
      break;
  }
}

void ApplyLogLevel(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
  LogLevel l = LogLevel::kInfo;
  if (level == "debug") l = LogLevel::kDebug;
  if (level == "warn") l = LogLevel::kWarn;
  if (level == "error") l = LogLevel::kError;
  if (level == "off") l = LogLevel::kOff;
  SetMinLogLevel(l);
}

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
  stats.SetStoreGauges({s->blobs, s->chunks, s->logical_bytes, s->unique_bytes, s->stored_bytes});
}

}  // namespace

void SetupLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_st("lazyblobd");
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    logger->set_pattern("%l: %v");  // journald adds time and pid
  } else {
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] [pid %P] %v");
  }
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  SetLogSink(&SpdlogSink);
  ApplyLogLevel(level);
}

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
  ChunkSource* source = origin != nullptr ? static_cast<ChunkSource*>(origin->source.get())
                                          : static_cast<ChunkSource*>(store.get());

  auto stats_or = PrometheusEngineStats::Open({});
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

  auto device_or = AdoptDevice(config, std::move(launch.device_fd));
  if (!device_or.ok()) {
    spdlog::error("adopting the device fd: {}", device_or.status().ToString());
    return kExitDeviceFailed;
  }
  std::unique_ptr<CacheDevice> device = std::move(*device_or);
  for (int i = 0; i < launch.restart_count; ++i) stats->WorkerRestart();
  EngineOptions eo;
  eo.worker_threads = config.worker_threads;
  eo.write_ahead_bytes = config.write_ahead_bytes;
  eo.chunk_cache_bytes = config.chunk_cache_bytes;
  eo.prefetch_on_open = config.prefetch_on_open;
  // A registry's window costs round trips: answer first, write it after.
  eo.write_ahead_async = origin != nullptr;
  auto engine_or = RequestEngine::Start(eo, device.get(), source, stats.get());
  if (!engine_or.ok()) {
    spdlog::error("engine: {}", engine_or.status().ToString());
    return kExitUsage;
  }
  std::unique_ptr<RequestEngine> engine = std::move(*engine_or);
  if (launch.restore) {
    // The kernel re-sends OPENs (new object ids and fds), then the READs that were pending
    // when the previous worker died; the engine serves them as they come.
    Status s = engine->Restore();
    if (!s.ok()) {
      spdlog::error("restore: {}", s.ToString());
      return kExitDeviceFailed;
    }
  }
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
    break;
  }
  engine->Stop();
  engine.reset();
  origin.reset();  // commits the fetched chunks still queued
  spdlog::info("worker exits ({})", code);
  return code;
}

}  // namespace lazyblob
