// OriginCache: where lazyblobd keeps the chunks it fetched from a registry, so a restarted
// daemon does not fetch them again: a ChunkStore of its own (registry/FORMAT.md "The origin
// cache"), opened as its writer (the node's main store belongs to the offline tool), with
// its pack bytes bounded by evicting whole packs, oldest first. A chunk a reader is
// reading is pinned: eviction carries it forward into the newest pack instead of dropping
// it, so a chunk is never evicted while it is served.
//
// Writes go through one writer thread: Persist() queues verified chunks and returns at
// once (readers never wait for an fsync); the thread commits every queued batch with one
// PutChunks (appended, fsynced, one index batch: a kill -9 loses only what was not
// committed and leaves a store that verifies), then evicts when over the bound.
//
// Thread-safety: thread-safe. `stats` is borrowed and must outlive the cache. The
// destructor commits what is queued, then stops the thread.
#ifndef LAZYBLOB_REGISTRY_ORIGIN_CACHE_H_
#define LAZYBLOB_REGISTRY_ORIGIN_CACHE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "registry/origin_stats.h"
#include "store/chunk_store.h"

namespace lazyblob {

struct OriginCacheOptions {
  std::string dir;  // the cache store's directory; created (with an empty store) if missing
  // Bound on the cache's pack files. Eviction starts above it and goes down to 90% of it.
  // Pinned chunks may keep the cache above it for a while. At least 16 MiB. Default 10 GiB.
  std::uint64_t limit_bytes = 10ull << 30;

  Status Validate() const;
  // Packs are cut at this size, the unit of eviction: limit / 16, within [1 MiB, 256 MiB].
  std::uint64_t pack_target_bytes() const;
};

class OriginCache {
 public:
  using PersistDone = std::function<void(const Status&)>;

  static Result<std::unique_ptr<OriginCache>> Open(const OriginCacheOptions& options,
                                                   OriginStats* stats);
  ~OriginCache();
  OriginCache(const OriginCache&) = delete;
  OriginCache& operator=(const OriginCache&) = delete;

  // ChunkStore::ReadChunk with the chunk pinned for the call. kNotFound when absent.
  Status ReadChunk(const ChunkExtent& extent, std::span<std::byte> out, ChunkReadTimings* timings);
  // Whether the cache holds `key` (index lookup only).
  bool Has(const ChunkKey& key);
  // Queues verified chunks; `done` runs on the writer thread once they are committed, or
  // with the error that kept them out.
  void Persist(std::vector<StoredChunk> chunks, PersistDone done);
  // Commits everything queued so far (tests, shutdown).
  void Flush() LB_EXCLUDES(mu_);

  std::uint64_t bytes() const LB_EXCLUDES(mu_);
  ChunkStore& store() { return *store_; }

 private:
  struct Job {
    std::vector<StoredChunk> chunks;
    PersistDone done;
  };
  OriginCache(const OriginCacheOptions& options, std::unique_ptr<ChunkStore> store,
              OriginStats* stats, std::uint64_t bytes);
  void WriterLoop() LB_EXCLUDES(mu_);
  void Commit(std::deque<Job>& jobs) LB_EXCLUDES(mu_);
  void EvictIfOver() LB_EXCLUDES(mu_);
  bool Pinned(const ChunkKey& key) LB_EXCLUDES(pin_mu_);

  const OriginCacheOptions options_;
  const std::unique_ptr<ChunkStore> store_;
  OriginStats* const stats_;

  mutable Mutex mu_;
  CondVar cv_;       // jobs queued, or stopping
  CondVar idle_cv_;  // the writer finished a round
  std::deque<Job> queue_ LB_GUARDED_BY(mu_);
  bool stopping_ LB_GUARDED_BY(mu_) = false;
  bool busy_ LB_GUARDED_BY(mu_) = false;
  std::uint64_t bytes_ LB_GUARDED_BY(mu_) = 0;

  Mutex pin_mu_;
  std::unordered_map<ChunkKey, int, ChunkKeyHash> pins_ LB_GUARDED_BY(pin_mu_);

  std::thread writer_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_ORIGIN_CACHE_H_
