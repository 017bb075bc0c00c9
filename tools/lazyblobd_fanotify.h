// The fanotify front end of the lazyblobd worker: serves EROFS file-backed mounts of sparse
// cache files from the chunk store, on fanotify pre-content events (Linux >= 6.14).
//
// Start of a worker: take the keeper's entries (tools/lazyblobd_keeper.h), adopt the group
// fd the supervisor holds, build a FanotifySource over it and the supervisor's journal, the
// PreContentEngine, restore the files/mounts/pending prepares of a predecessor
// (FanotifyMounts::Restore, which re-marks the files through the fill fds it kept), answer
// the predecessor's orphans (PreContentEngine::Start), then listen on the control socket
// (made once, kept by the supervisor) for `lazyblob mount/umount`.
//
// Clean stop (SIGTERM/SIGINT): stop taking control requests, then FanotifyMounts::
// PrepareStop (unmount every mount; complete the files of busy ones), retried every 2 s
// while a file cannot be completed (the group must not close while a reader could see a
// hole), then stop the engine and remove the control socket. SIGHUP: `reload` (config,
// log level, store gauges), then the new write-ahead.
//
// Thread-safety: called once per worker process from its main thread, signals blocked.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_FANOTIFY_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_FANOTIFY_H_

#include <cstdint>
#include <functional>
#include <optional>

#include "core/access_trace.h"
#include "core/chunk_source.h"
#include "core/engine_stats.h"
#include "tools/lazyblobd_config.h"
#include "tools/lazyblobd_worker.h"

namespace lazyblob {

// Returns the worker's exit code. `reload` re-reads the config for SIGHUP and returns the
// write-ahead to apply (nullopt: keep the current one). `traces` (may be null: no access
// traces) must outlive the call.
int RunFanotifyWorker(const DaemonConfig& config, WorkerLaunch& launch, ChunkSource* store,
                      EngineStats* stats, AccessTraceStore* traces,
                      const std::function<std::optional<std::uint64_t>()>& reload);

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_FANOTIFY_H_
