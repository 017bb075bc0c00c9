// ChunkCache: a bytes-bounded LRU of decompressed, verified chunks shared by every object
// the engine serves, with single-flight loading: concurrent GetOrLoad calls for the same
// key run the loader once and all get its result. Buffers are shared_ptr, so an entry
// evicted while a READ still writes from it stays alive until that READ drops it.
//
// Only successful loads are cached; a failed load (corrupt, missing) is returned to every
// caller that waited on it and the next call tries again.
//
// Thread-safety: thread-safe. The cache is split into shards by key, each guarded by its
// own mutex held only for map/list updates (never while loading). Waiters for an in-flight
// load block their thread until the loader returns, so callers must run loaders on threads
// that may block (the engine's I/O arena).
#ifndef LAZYBLOB_CORE_CHUNK_CACHE_H_
#define LAZYBLOB_CORE_CHUNK_CACHE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <unordered_map>

#include "core/aligned_buffer.h"
#include "core/chunk_source.h"
#include "core/mutex.h"
#include "core/status.h"

namespace lazyblob {

class ChunkCache {
 public:
  using Buffer = std::shared_ptr<const AlignedBuffer>;
  using Loader = std::function<Result<Buffer>()>;

  enum class Source { kCached, kWaited, kLoaded };

  struct Lookup {
    Buffer buffer;
    Source source = Source::kLoaded;
  };

  // capacity_bytes == 0 disables caching (single-flight still applies).
  explicit ChunkCache(std::uint64_t capacity_bytes);
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  // Returns the cached buffer for `key`, or joins an in-flight load of it, or runs `loader`
  // on the calling thread. Errors are the loader's.
  Result<Lookup> GetOrLoad(const ChunkKey& key, const Loader& loader);

  // Bytes currently held (sum of buffer sizes), for tests and stats.
  std::uint64_t size_bytes() const;

 private:
  static constexpr std::size_t kShards = 16;

  struct Flight {
    Mutex mu;
    CondVar cv;
    bool done LB_GUARDED_BY(mu) = false;
    Status status LB_GUARDED_BY(mu);
    Buffer buffer LB_GUARDED_BY(mu);
  };
  struct Entry {
    ChunkKey key;
    Buffer buffer;
  };
  struct Shard {
    mutable Mutex mu;
    std::list<Entry> lru LB_GUARDED_BY(mu);  // front = most recently used
    std::unordered_map<ChunkKey, std::list<Entry>::iterator, ChunkKeyHash> index LB_GUARDED_BY(mu);
    std::unordered_map<ChunkKey, std::shared_ptr<Flight>, ChunkKeyHash> flights LB_GUARDED_BY(mu);
    std::uint64_t bytes LB_GUARDED_BY(mu) = 0;
  };

  Shard& ShardFor(const ChunkKey& key);
  void InsertLocked(Shard& shard, const ChunkKey& key, const Buffer& buffer) LB_REQUIRES(shard.mu);

  const std::uint64_t shard_capacity_bytes_;
  std::array<Shard, kShards> shards_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_CHUNK_CACHE_H_
