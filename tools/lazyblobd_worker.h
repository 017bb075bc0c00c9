// The lazyblobd worker: opens the store read-only (holding its SERVING lock), adopts the
// device fd it was given, optionally asks the kernel to `restore`, runs the RequestEngine
// and handles signals (SIGTERM/SIGINT: stop taking work, answer everything in flight,
// exit 0; SIGHUP: reload log level and write-ahead from the config file) until told to
// stop or the device fails. Runs in a process forked by the supervisor, or in the main
// process with --no-supervisor.
//
// Thread-safety: called once per process, from its main thread, with SIGTERM, SIGINT and
// SIGHUP blocked in every thread (the worker reads them from a signalfd).
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_WORKER_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_WORKER_H_

#include <functional>
#include <vector>

#include "core/unique_fd.h"
#include "store/blob_lease.h"
#include "tools/lazyblobd_config.h"
#include "tools/lazyblobd_read_journal.h"

namespace lazyblob {

// Process exit codes of lazyblobd (worker and supervisor).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;       // failed after the checks, or killed on stop
inline constexpr int kExitUsage = 2;         // bad flags, config, store, address or device
inline constexpr int kExitDeviceFailed = 3;  // the device or simulator went away

class AccessJournal;

struct WorkerLaunch {
  // A bound /dev/cachefiles fd or a simulator device socket; with `fanotify`, the fanotify
  // pre-content group the supervisor holds.
  UniqueFd device_fd;
  bool fanotify = false;             // serve the fanotify front end (tools/lazyblobd_fanotify.h)
  UniqueFd keeper_fd;                // the supervisor's fd keeper (invalid: none)
  AccessJournal* journal = nullptr;  // the supervisor's event journal (null: none)
  bool restore = false;              // write `restore` first (the fd outlived a previous worker)
  int restart_count = 0;             // how many workers died before this one
  std::function<void()> on_ready;    // called once the engine serves
  int stop_alarm_s = 0;              // > 0: a stop that takes longer ends by SIGALRM
  // cachefiles: the supervisor's record of READs in flight (null: none), and the ranges it
  // found in flight at too many crashes, which this worker fails instead of serving.
  ReadJournal* read_journal = nullptr;
  std::vector<JournaledRead> poisoned_reads;
  // Leases of the blobs the previous worker had open, held until this one reopens them.
  std::vector<BlobLease> inherited_leases;
  // The READs the previous worker left unanswered (logged when re-delivered).
  std::vector<JournaledRead> unanswered_reads;
};

// Returns the process exit code.
int RunWorker(DaemonConfig config, WorkerLaunch launch);

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_WORKER_H_
