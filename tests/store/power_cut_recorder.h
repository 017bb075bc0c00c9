// PowerCutRecorder: a fault-injecting file layer for power-cut tests, in the spirit of
// RocksDB's FaultInjectionTestFS (which Debian's librocksdb-dev does not ship). It sits
// under the store's own durability calls (it is a FileOps, for
// ChunkStoreOptions::test_file_ops) and under RocksDB's (rocksdb_env(), an Env whose
// FileSystem wraps the default one, for ChunkStoreOptions::test_index_env).
//
// The model of a power cut (what is on the disk when the power comes back):
//  - a regular file holds exactly the bytes it held at its last fsync/fdatasync through
//    the layer (nothing if it was never synced). Whatever was written, appended or
//    truncated since is lost. The store's packs and RocksDB's files are append-only, so
//    this is "durable up to the length at the last sync"; the two places that shrink a
//    pack (a writer truncating an uncommitted tail, a rollback) sync after truncating,
//    and a cut before that sync leaves the longer file, as a real disk may;
//  - a directory holds exactly the entries it held at its last fsync through the layer
//    (none if it was never synced): a created, renamed or unlinked name is durable only
//    once its directory is fsynced. An entry names the file (inode), whose bytes are as
//    above; a subdirectory's entries are its own;
//  - nothing else survives: no unsynced write, no page-cache state, no lock.
// Files that never pass through a sync (lock files: the store's LOCK, SERVING and leases,
// RocksDB's LOCK; RocksDB's info LOG) come back empty if their directory entry was
// synced, else not at all. That is harmless: they hold no state (flock locks live in the
// kernel; LOCK's pid is informational) and are opened with O_CREAT on every use.
//
// How: the real tree under `root` plays the page cache, and the recorder keeps the
// durable image the model describes, changed only by a sync call. Since nothing else
// changes it, the images just before each sync call are every state a power cut can
// leave: each sync call is recorded as a cut point with the image it would leave, and
// Materialize() writes one out as a fresh directory, the disk after the power returns.
// Files are identified by inode; the recorder keeps an O_PATH fd on every inode it knows,
// so no inode number is reused while its image may still name it.
//
// Thread-safety: thread-safe; sync calls are serialized (RocksDB may sync from its own
// threads). The recorder must outlive every store and Env user it was given to.
#ifndef LAZYBLOB_TESTS_STORE_POWER_CUT_RECORDER_H_
#define LAZYBLOB_TESTS_STORE_POWER_CUT_RECORDER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "core/unique_fd.h"
#include "store/file_ops.h"

namespace rocksdb {
class Env;
class FileSystem;
}  // namespace rocksdb

namespace lazyblob::testing {

// What a power cut leaves: per inode, its durable bytes or directory entries.
struct DurableImage {
  struct Node {
    bool dir = false;
    std::shared_ptr<const std::string> data;                      // file
    std::shared_ptr<const std::map<std::string, ino_t>> entries;  // directory
  };
  ino_t root = 0;
  std::map<ino_t, Node> nodes;
};

struct CutPoint {
  std::size_t syncs_before = 0;  // sync calls that took effect before the cut
  std::string before;            // the sync call the cut precedes, or "end"
  std::string phase;             // what the test was doing (SetPhase)
  DurableImage image;
};

class PowerCutRecorder final : public FileOps {
 public:
  // Everything under `root` (a directory) is durable now, as after sync(1).
  explicit PowerCutRecorder(std::string root);
  ~PowerCutRecorder() override;
  PowerCutRecorder(const PowerCutRecorder&) = delete;
  PowerCutRecorder& operator=(const PowerCutRecorder&) = delete;

  // FileOps: records a cut point, then syncs. Calls on files outside `root` only sync.
  int FDataSync(int fd) override;
  int FSyncDir(int fd) override;

  // RocksDB's default Env with its FileSystem wrapped: every Sync/Fsync of a writable
  // file and every Fsync of a directory is recorded like the calls above. RangeSync
  // (sync_file_range) promises nothing durable and is not a sync point.
  rocksdb::Env* rocksdb_env() { return env_.get(); }

  // Names the operation the following sync calls belong to (listed with each cut).
  void SetPhase(std::string phase);
  // Sync calls recorded so far.
  std::size_t syncs();
  // The cut points recorded so far, then one for the current moment ("end").
  std::vector<CutPoint> CutPoints();

  // Writes `image` as a new directory tree at `dest` (which must not exist).
  static Status Materialize(const DurableImage& image, const std::string& dest);

  // The layer's sync path (the FileOps calls and the RocksDB wrappers): unless `path` is
  // outside `root`, records a cut point, reads what `path` (a directory when `dir`)
  // holds, calls `sync` and, if it returns true, makes that durable.
  bool RecordSync(const std::string& path, bool dir, const char* how,
                  const std::function<bool()>& sync);

 private:
  // Registers the inode at `path` (pinning it) if it is new; its number, 0 if it vanished.
  ino_t Know(const std::string& path) LB_REQUIRES(mu_);
  // What `path` holds now: its bytes, or its entries (registering them).
  Result<DurableImage::Node> Read(const std::string& path, bool dir) LB_REQUIRES(mu_);
  bool Inside(const std::string& path) const;

  const std::string root_;  // canonical
  Mutex mu_;
  DurableImage image_ LB_GUARDED_BY(mu_);
  std::map<ino_t, UniqueFd> pins_ LB_GUARDED_BY(mu_);
  std::vector<CutPoint> cuts_ LB_GUARDED_BY(mu_);
  std::string phase_ LB_GUARDED_BY(mu_);
  std::shared_ptr<rocksdb::FileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;
};

// A layer that skips every sync, for stores whose durability does not matter (the
// scratch copies a power-cut test checks): it keeps the checks off the disk's flush path.
// Thread-safety: thread-safe (stateless).
class SkipSyncs final : public FileOps {
 public:
  SkipSyncs();
  ~SkipSyncs() override;
  int FDataSync(int) override { return 0; }
  int FSyncDir(int) override { return 0; }
  rocksdb::Env* rocksdb_env() { return env_.get(); }

 private:
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace lazyblob::testing

#endif  // LAZYBLOB_TESTS_STORE_POWER_CUT_RECORDER_H_
