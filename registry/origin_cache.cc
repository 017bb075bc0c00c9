#include "registry/origin_cache.h"

#include <algorithm>
#include <utility>

#include "core/log.h"

namespace lazyblob {

Status OriginCacheOptions::Validate() const {
  if (dir.empty()) return InvalidArgument("origin cache: no directory");
  if (limit_bytes < (16ull << 20))
    return InvalidArgument("origin cache: the bound is below 16 MiB");
  return Status::Ok();
}

std::uint64_t OriginCacheOptions::pack_target_bytes() const {
  return std::clamp<std::uint64_t>(limit_bytes / 16, 1ull << 20, 256ull << 20);
}

Result<std::unique_ptr<OriginCache>> OriginCache::Open(const OriginCacheOptions& options,
                                                       OriginStats* stats) {
  LB_RETURN_IF_ERROR(options.Validate());
  ChunkStoreOptions so;
  so.path = options.dir;
  so.writable = true;
  so.create_if_missing = true;
  so.pack_target_bytes = options.pack_target_bytes();
  so.import_threads = 1;
  auto store = ChunkStore::Open(so);
  if (!store.ok()) return store.status().WithContext("origin cache " + options.dir);
  LB_ASSIGN_OR_RETURN(std::uint64_t bytes, (*store)->PackBytes());
  auto cache =
      std::unique_ptr<OriginCache>(new OriginCache(options, std::move(*store), stats, bytes));
  stats->CacheBytes(bytes, options.limit_bytes);
  return cache;
}

OriginCache::OriginCache(const OriginCacheOptions& options, std::unique_ptr<ChunkStore> store,
                         OriginStats* stats, std::uint64_t bytes)
    : options_(options), store_(std::move(store)), stats_(stats), bytes_(bytes) {
  writer_ = std::thread([this] { WriterLoop(); });
}

OriginCache::~OriginCache() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  writer_.join();
}

Status OriginCache::ReadChunk(const ChunkExtent& extent, std::span<std::byte> out,
                              ChunkReadTimings* timings) {
  {
    MutexLock lock(&pin_mu_);
    ++pins_[extent.key];
  }
  Status s = store_->ReadChunk(extent, out, timings);
  {
    MutexLock lock(&pin_mu_);
    auto it = pins_.find(extent.key);
    if (--it->second == 0) pins_.erase(it);
  }
  return s;
}

bool OriginCache::Has(const ChunkKey& key) {
  auto has = store_->HasChunk(key);
  return has.ok() && *has;
}

bool OriginCache::Pinned(const ChunkKey& key) {
  MutexLock lock(&pin_mu_);
  return pins_.count(key) != 0;
}

void OriginCache::Persist(std::vector<StoredChunk> chunks, PersistDone done) {
  {
    MutexLock lock(&mu_);
    queue_.push_back(Job{std::move(chunks), std::move(done)});
  }
  cv_.Signal();
}

void OriginCache::Flush() {
  MutexLock lock(&mu_);
  while (!queue_.empty() || busy_) idle_cv_.Wait(&mu_);
}

std::uint64_t OriginCache::bytes() const {
  MutexLock lock(&mu_);
  return bytes_;
}

void OriginCache::WriterLoop() {
  for (;;) {
    std::deque<Job> jobs;
    {
      MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) cv_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping, nothing left
      jobs.swap(queue_);
      busy_ = true;
    }
    Commit(jobs);
    EvictIfOver();
    // After eviction: the gauge never shows a passing state above the bound.
    stats_->CacheBytes(bytes(), options_.limit_bytes);
    {
      MutexLock lock(&mu_);
      busy_ = false;
    }
    idle_cv_.SignalAll();
  }
}

// One PutChunks for every queued job: one fsync however many requests finished meanwhile.
void OriginCache::Commit(std::deque<Job>& jobs) {
  std::vector<StoredChunk> all;
  for (Job& job : jobs) {
    for (StoredChunk& c : job.chunks) all.push_back(std::move(c));
  }
  Status status;
  if (!all.empty()) {
    auto put = store_->PutChunks(all);
    status = put.status();
    if (put.ok()) {
      MutexLock lock(&mu_);
      bytes_ += put->new_stored_bytes;
    } else {
      stats_->PersistFailed();
      Log(LogLevel::kWarn, "origin cache: " + std::to_string(all.size()) +
                               " fetched chunks not kept: " + status.ToString());
    }
  }
  for (Job& job : jobs) {
    if (job.done) job.done(status);
  }
}

void OriginCache::EvictIfOver() {
  if (bytes() <= options_.limit_bytes) return;
  auto evicted = store_->EvictPacks(options_.limit_bytes / 10 * 9,
                                    [this](const ChunkKey& key) { return Pinned(key); });
  if (!evicted.ok()) {
    Log(LogLevel::kWarn, "origin cache: eviction failed: " + evicted.status().ToString());
    return;
  }
  {
    MutexLock lock(&mu_);
    bytes_ = evicted->pack_bytes;
  }
  stats_->Evicted(evicted->packs_evicted, evicted->chunks_evicted, evicted->evicted_bytes);
  Log(LogLevel::kInfo, "origin cache: evicted " + std::to_string(evicted->chunks_evicted) +
                           " chunks in " + std::to_string(evicted->packs_evicted) + " packs (" +
                           std::to_string(evicted->chunks_kept) +
                           " pinned chunks carried forward); " +
                           std::to_string(evicted->pack_bytes) + " bytes left");
}

}  // namespace lazyblob
