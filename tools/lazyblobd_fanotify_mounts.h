// FanotifyMounts: the fanotify front end's files and mounts, behind the control socket.
//
// Files: one sparse cache file per blob, <cache_dir>/fanotify/<name>.<map hash> (name: the
// hex of the id, or "s" + SHA-256 for long ids; the map hash changes when an id is reused
// for other content, so stale bytes are never served). Its size is the blob's. Making a
// file ready (Prepare): create it, open the fill fd, register it with the engine (chunks an
// earlier run wrote count as written), for a primary image make its metadata present
// (parse the EROFS layout through the engine, which fills the chunks each read touches,
// then fill the whole chunks covering MergedMetadata(4096)), hand the fill fd to the keeper,
// then mark it. A file is referenced by every mount and pending prepare that names it and
// released (unmarked, forgotten, keeper entry dropped) at zero; the bytes stay on disk for
// the next mount.
//
// Crash safety: every file, every pending prepare and every mount is in the keeper before
// anything depends on it, so a restarted worker (Restore) serves exactly what its
// predecessor served. A prepare whose client never reported (died after mount(2), or before
// it) keeps its files marked: an unreported mount may exist, and an unmarked hole reads as
// zeros.
//
// Clean stop (PrepareStop, while the engine still serves): each mount is unmounted
// (umount2, no MNT_DETACH, in the client's mount namespace; skipped when the directory no
// longer holds that mount). Files still used by a busy mount or an unreported prepare are
// made complete (every chunk written, mark removed): such a mount stays mounted and keeps
// reading correct bytes with no daemon. A file that cannot be completed (a chunk fails)
// blocks the stop: the worker keeps serving, logs, and retries, since closing the group
// would let readers see zeros.
//
// Thread-safety: thread-safe; one mutex serializes all operations (prepares included).
// Lifetimes: store, engine and keeper are borrowed and must outlive this object.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_FANOTIFY_MOUNTS_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_FANOTIFY_MOUNTS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/chunk_source.h"
#include "core/mutex.h"
#include "core/pre_content_engine.h"
#include "core/status.h"
#include "tools/lazyblob_control_protocol.h"
#include "tools/lazyblobd_keeper.h"

namespace lazyblob {

class FanotifyMounts {
 public:
  // Sparse files live in `files_dir` (created if missing).
  FanotifyMounts(std::string files_dir, ChunkSource* store, PreContentEngine* engine,
                 const KeeperClient* keeper);

  // After a worker restart, before the engine starts: re-registers and re-marks the files,
  // mounts and pending prepares the keeper handed over; releases files none references.
  void Restore(std::map<std::string, KeptEntry, std::less<>>& kept) LB_EXCLUDES(mu_);

  struct Prepared {
    std::uint64_t token = 0;
    std::vector<std::string> paths;  // [0] the primary image, then the devices in order
  };
  // kNotFound for an unknown blob id; kInvalidArgument when the primary is no EROFS image or
  // its device table does not match `devices`.
  Result<Prepared> Prepare(const std::string& id, const std::vector<std::string>& devices,
                           const std::string& dir) LB_EXCLUDES(mu_);
  Status Abort(std::uint64_t token) LB_EXCLUDES(mu_);
  // `ns_fd`: the client's mount namespace (kept only when it is not this process's).
  Status Mounted(std::uint64_t token, const std::string& dir, std::uint64_t mnt_id, UniqueFd ns_fd)
      LB_EXCLUDES(mu_);
  // The directory of lazyblob mount `mnt_id`; kNotFound when it is not one.
  Result<std::string> FindMount(std::uint64_t mnt_id) const LB_EXCLUDES(mu_);
  Status Unmounted(std::uint64_t mnt_id) LB_EXCLUDES(mu_);
  ControlMessage Describe() const LB_EXCLUDES(mu_);

  struct StopReport {
    int unmounted = 0;                  // unmounted now
    int gone = 0;                       // already unmounted by someone else
    int busy = 0;                       // still mounted (busy) or unreported: their files completed
    std::vector<std::string> blocking;  // blob ids that could not be completed
  };
  StopReport PrepareStop() LB_EXCLUDES(mu_);

 private:
  struct File {
    std::shared_ptr<ServedFile> served;
    std::string path;
    int refs = 0;
    bool metadata_ready = false;
  };
  struct Mount {
    std::string dir;
    std::vector<std::string> ids;
    UniqueFd ns_fd;  // the client's mount namespace, when it is not ours
  };
  struct Pending {
    std::vector<std::string> ids;
    std::string dir;
  };

  // A file of `id` with one more reference (made ready when new).
  Result<std::string> AcquireLocked(const std::string& id, bool primary, std::size_t devices)
      LB_REQUIRES(mu_);
  Result<File> OpenFileLocked(const std::string& id) LB_REQUIRES(mu_);
  void ReleaseLocked(const std::string& id) LB_REQUIRES(mu_);
  void ReleaseAllLocked(const std::vector<std::string>& ids) LB_REQUIRES(mu_);
  Status PrefillMetadata(ServedFile& file, std::size_t devices);
  std::string PathFor(const BlobMap& map) const;
  void RestoreFileLocked(const std::string& id, KeptEntry& entry) LB_REQUIRES(mu_);
  // 0, ENOENT when `dir` no longer holds mount `mnt_id`, or umount2's errno.
  static int Unmount(const Mount& mount, std::uint64_t mnt_id);

  const std::string files_dir_;
  ChunkSource* const store_;
  PreContentEngine* const engine_;
  const KeeperClient* const keeper_;

  mutable Mutex mu_;
  std::map<std::string, File> files_ LB_GUARDED_BY(mu_);
  std::map<std::uint64_t, Mount> mounts_ LB_GUARDED_BY(mu_);
  std::map<std::uint64_t, Pending> pending_ LB_GUARDED_BY(mu_);
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_FANOTIFY_MOUNTS_H_
