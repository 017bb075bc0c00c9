// lazyblobd: the daemon. See tools/lazyblobd_supervisor.h and tools/lazyblobd_worker.h.
#include <signal.h>

#include "tools/lazyblobd_config.h"
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
  lazyblob::SetupLogging(args.config.log_level);
  return args.config.supervisor ? lazyblob::RunSupervisor(args.config)
                                : lazyblob::RunWithoutSupervisor(args.config);
}
