// PackSet: read access to a store's pack files: paths, a cache of open fds and the
// decode-and-verify path of a chunk record (the daemon's hot path).
//
// Thread-safety: thread-safe. The fd cache is guarded by a shared_mutex taken shared on
// lookups; each cached fd is reference counted, so Forget() never closes an fd a reader
// is using. Decompression uses a per-thread ZSTD_DCtx.
#ifndef LAZYBLOB_STORE_PACK_SET_H_
#define LAZYBLOB_STORE_PACK_SET_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/chunk_source.h"
#include "core/mutex.h"
#include "core/status.h"
#include "core/unique_fd.h"
#include "store/pack_format.h"
#include "store/store_index.h"

namespace lazyblob {

class PackSet {
 public:
  explicit PackSet(std::string store_dir) : dir_(std::move(store_dir)) {}

  static std::string PackDir(const std::string& store_dir);
  static std::string PackPath(const std::string& store_dir, std::uint32_t pack_id);
  // Sorted ids of packs/pack-NNNNNN.lbp files.
  static Result<std::vector<std::uint32_t>> ListPackIds(const std::string& store_dir);

  // Reads the chunk record at `loc`, checks its header against `key`/`loc`, decompresses
  // into `out` (>= AlignUp(loc.raw_len) bytes), verifies XXH3-128 (and SHA-256 when
  // `check_sha256`) and zero-fills to the block boundary. kCorruption on any mismatch;
  // kNotFound when the pack file does not exist or was unlinked since its fd was cached
  // (the fd is dropped then). `timings` (optional) gets the read,
  // decompression and verification times added.
  Status ReadChunk(const ChunkKey& key, const ChunkLocation& loc, std::span<std::byte> out,
                   bool check_sha256, ChunkReadTimings* timings = nullptr);

  // Reads exactly `out.size()` bytes at `offset`; kCorruption if the pack is shorter,
  // kNotFound as for ReadChunk.
  Status ReadAt(std::uint32_t pack_id, std::uint64_t offset, std::span<std::uint8_t> out);

  // Drops the cached fd of a pack (after gc deleted it).
  void Forget(std::uint32_t pack_id);

 private:
  // Pack fds kept open for reuse (issue 14: the daemon bounds the fds it holds).
  static constexpr std::size_t kMaxOpenPacks = 64;

  // Cached fds of packs gc unlinked keep their space allocated: they are dropped when
  // found (each lookup checks the fd it returns), whenever a pack is opened, and every
  // kSweepEveryLookups lookups, so even packs a reader never touches again are released.
  static constexpr unsigned kSweepEveryLookups = 64;

  Result<std::shared_ptr<UniqueFd>> Fd(std::uint32_t pack_id);
  void DropUnlinked();

  const std::string dir_;
  SharedMutex mu_;
  // Open pack fds, at most kMaxOpenPacks: a READ in flight keeps its own reference, so
  // dropping one here never closes an fd under a reader.
  std::unordered_map<std::uint32_t, std::shared_ptr<UniqueFd>> fds_ LB_GUARDED_BY(mu_);
  std::atomic<unsigned> lookups_{0};
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_PACK_SET_H_
