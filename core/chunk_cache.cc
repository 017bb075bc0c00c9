#include "core/chunk_cache.h"

#include <exception>
#include <string>
#include <utility>

namespace lazyblob {

ChunkCache::ChunkCache(std::uint64_t capacity_bytes)
    : shard_capacity_bytes_(capacity_bytes / kShards) {}

ChunkCache::Shard& ChunkCache::ShardFor(const ChunkKey& key) {
  // ChunkKeyHash uses the first 8 bytes; take the shard from a different byte so a shard's
  // unordered_map still sees well-spread hashes.
  return shards_[key.bytes[15] % kShards];
}

void ChunkCache::InsertLocked(Shard& shard, const ChunkKey& key, const Buffer& buffer) {
  const std::uint64_t size = buffer->size();
  if (size > shard_capacity_bytes_ || shard.index.count(key) != 0) return;
  while (shard.bytes + size > shard_capacity_bytes_ && !shard.lru.empty()) {
    Entry& victim = shard.lru.back();
    shard.bytes -= victim.buffer->size();
    shard.index.erase(victim.key);
    shard.lru.pop_back();
  }
  shard.lru.push_front(Entry{key, buffer});
  shard.index.emplace(key, shard.lru.begin());
  shard.bytes += size;
}

Result<ChunkCache::Lookup> ChunkCache::GetOrLoad(const ChunkKey& key, const Loader& loader) {
  Shard& shard = ShardFor(key);
  std::shared_ptr<Flight> flight;
  {
    MutexLock lock(&shard.mu);
    if (auto it = shard.index.find(key); it != shard.index.end()) {
      shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
      return Lookup{it->second->buffer, Source::kCached};
    }
    if (auto it = shard.flights.find(key); it != shard.flights.end()) {
      flight = it->second;
    } else {
      // No load in flight: this thread registers one and runs the loader below; a null
      // `flight` is what tells it so.
      shard.flights.emplace(key, std::make_shared<Flight>());
    }
  }

  if (flight != nullptr) {  // another thread is loading: wait for its result
    MutexLock lock(&flight->mu);
    while (!flight->done) flight->cv.Wait(&flight->mu);
    if (!flight->status.ok()) return flight->status;
    return Lookup{flight->buffer, Source::kWaited};
  }

  // The flight must be resolved on every path, or its waiters block forever.
  Result<Buffer> loaded = Internal("chunk loader threw");
  try {
    loaded = loader();
  } catch (const std::exception& e) {
    loaded = Internal(std::string("chunk loader threw: ") + e.what());
  }
  {
    MutexLock lock(&shard.mu);
    auto it = shard.flights.find(key);
    flight = std::move(it->second);
    shard.flights.erase(it);
    if (loaded.ok()) InsertLocked(shard, key, *loaded);
  }
  {
    MutexLock lock(&flight->mu);
    flight->done = true;
    if (loaded.ok()) {
      flight->buffer = *loaded;
    } else {
      flight->status = loaded.status();
    }
  }
  flight->cv.SignalAll();
  if (!loaded.ok()) return loaded.status();
  return Lookup{std::move(*loaded), Source::kLoaded};
}

std::uint64_t ChunkCache::size_bytes() const {
  std::uint64_t total = 0;
  for (const Shard& s : shards_) {
    MutexLock lock(&s.mu);
    total += s.bytes;
  }
  return total;
}

}  // namespace lazyblob
