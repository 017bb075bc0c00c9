// Which front end lazyblobd serves (--frontend) and the kernel handle it needs, acquired by
// the supervisor so that it outlives every worker:
//  - cachefiles: the bound /dev/cachefiles fd (or the simulator's socket), AcquireDevice;
//  - fanotify: a fanotify pre-content group, plus the AccessJournal (shared memory) in
//    which workers record the events they take;
//  - auto: cachefiles when the device exists and binds in on-demand mode, else fanotify.
// The choice and its reason are logged.
//
// Thread-safety: call from the main thread before forking.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_FRONTEND_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_FRONTEND_H_

#include <memory>

#include "core/status.h"
#include "core/unique_fd.h"
#include "tools/lazyblobd_config.h"
#include "transport/access_journal.h"

namespace lazyblob {

struct AcquiredFrontend {
  bool fanotify = false;
  UniqueFd fd;                             // the device fd, or the fanotify group fd
  bool from_fd_store = false;              // cachefiles: a previous instance bound it (restore)
  std::unique_ptr<AccessJournal> journal;  // fanotify only
};

Result<AcquiredFrontend> AcquireFrontend(const DaemonConfig& config);

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_FRONTEND_H_
