// The lazyblobd supervisor: acquires the device fd (from systemd's fd store after a
// service restart, else by opening and binding /dev/cachefiles or connecting to a
// simulator socket), keeps it open for its whole life (closing it would withdraw the cache
// and fail every reader), stores it in systemd's fd store when run by systemd, and runs the
// worker in a forked child that inherits the fd. A worker that dies is restarted with
// exponential backoff (100 ms doubling to 5 s, reset after 10 s of service) and writes
// `restore`, so readers see no error. SIGTERM/SIGINT are forwarded and end the supervisor
// once the worker exited; SIGHUP is forwarded. Sends sd_notify READY=1 when the first
// worker serves.
//
// Thread-safety: single-threaded by design (it forks).
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_SUPERVISOR_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_SUPERVISOR_H_

#include "core/status.h"
#include "core/unique_fd.h"
#include "tools/lazyblobd_config.h"

namespace lazyblob {

struct AcquiredDevice {
  UniqueFd fd;
  bool from_fd_store = false;  // a previous instance bound it: the worker must restore
};

// Takes the device fd from systemd's fd store or opens it per `config`; stores a new one
// in the fd store when NOTIFY_SOCKET is set.
Result<AcquiredDevice> AcquireDevice(const DaemonConfig& config);

// Both return the process exit code.
int RunSupervisor(const DaemonConfig& config);
int RunWithoutSupervisor(const DaemonConfig& config);

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_SUPERVISOR_H_
