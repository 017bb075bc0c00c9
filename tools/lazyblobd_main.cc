// lazyblobd: the daemon. See tools/lazyblobd_supervisor.h and tools/lazyblobd_worker.h.
// Order: flags and config file (exit 2 on any problem), logging, the preflight checks
// (store, cache dir, metrics address, device type: exit 2, before the device is opened),
// then the fd limit raised to its hard limit, then the supervisor or the worker.
#include <signal.h>

#include <spdlog/spdlog.h>

#include <cstdio>

#include "tools/lazyblobd_config.h"
#include "tools/lazyblobd_logging.h"
#include "tools/lazyblobd_preflight.h"
#include "tools/lazyblobd_rlimit.h"
#include "tools/lazyblobd_supervisor.h"
#include "tools/lazyblobd_worker.h"

int main(int argc, char** argv) {
  // Blocked before any thread exists, so every thread inherits the mask and the signals
  // are read from signalfds only.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  lazyblob::ParsedArgs args = lazyblob::ParseDaemonArgs(argc, argv);
  if (args.exit_code >= 0) return args.exit_code;
  const lazyblob::DaemonConfig& config = args.config;
  lazyblob::SetupLogging(config.log_level, config.log_format);
  if (lazyblob::Status s = lazyblob::Preflight(config); !s.ok()) {
    std::fprintf(stderr, "lazyblobd: %s\n", s.message().c_str());
    return lazyblob::kExitUsage;
  }
  if (config.check_config) {
    const std::string store = config.store_dir.empty()
                                  ? "none (origin " + config.origin.registry + " only)"
                                  : config.store_dir;
    std::printf("lazyblobd: configuration OK: store %s, %s, metrics %s\n", store.c_str(),
                config.sim_socket.empty()
                    ? ("device " + config.device_path + ", cache dir " + config.cache_dir).c_str()
                    : "simulator",
                config.metrics_listen.empty() ? "off" : config.metrics_listen.c_str());
    return lazyblob::kExitOk;
  }
  // Before the supervisor forks: every worker inherits the raised limit.
  if (auto lim = lazyblob::RaiseFdLimit(); !lim.ok()) {
    spdlog::warn("fd limit not raised: {}", lim.status().ToString());
  } else {
    spdlog::info("fd limit (RLIMIT_NOFILE): soft {} -> {}, hard {}", lim->soft_before, lim->soft,
                 lim->hard);
  }
  return config.supervisor ? lazyblob::RunSupervisor(config)
                           : lazyblob::RunWithoutSupervisor(config);
}
