// StatsShard: one thread's share of PrometheusEngineStats' counters, and ShardRegistry,
// which owns every shard of one PrometheusEngineStats and hands each thread its own.
//
// Why: EngineStats is called several times on every READ from every worker thread.
// prometheus-cpp's Counter/Histogram do a locked read-modify-write on a shared cache line
// for each call; a shard is written by one thread only, with plain relaxed load+store
// (no lock prefix, no cache-line bouncing), and a scrape sums all shards.
//
// Thread-safety: a StatsShard has exactly one writer, the thread that holds it, and any
// number of concurrent readers (relaxed loads; a scrape may see one call half applied,
// e.g. a histogram bucket before its sum). ShardRegistry is thread-safe. A shard that a
// thread held is released when the thread exits and reused by the next new thread: its
// totals keep counting, so counters never go down.
#ifndef LAZYBLOB_METRICS_STATS_SHARD_H_
#define LAZYBLOB_METRICS_STATS_SHARD_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/mutex.h"

namespace lazyblob {

// Upper bounds (seconds) of lazyblob_read_latency_seconds' buckets, +Inf excluded.
inline constexpr std::array<double, 17> kReadLatencyBucketsSeconds = {
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3,
    50e-3, 100e-3, 250e-3, 500e-3, 1.0,  2.5,    5.0,  10.0};

struct alignas(64) StatsShard {
  static constexpr int kOps = 3;                                          // RequestOp
  static constexpr int kResults = 3;                                      // RequestResult
  static constexpr int kLookupResults = 4;                                // ChunkLookupResult
  static constexpr int kStages = 6;                                       // Stage
  static constexpr int kBuckets = kReadLatencyBucketsSeconds.size() + 1;  // last is +Inf

  // Single-writer adds: only the owning thread calls these.
  static void Add(std::atomic<std::uint64_t>& a, std::uint64_t v) {
    a.store(a.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }
  static void Add(std::atomic<std::int64_t>& a, std::int64_t v) {
    a.store(a.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }
  static void Add(std::atomic<double>& a, double v) {
    a.store(a.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }

  std::atomic<std::uint64_t> requests[kOps][kResults] = {};
  std::atomic<std::uint64_t> read_latency_buckets[kBuckets] = {};  // not cumulative
  std::atomic<double> read_latency_sum{0.0};
  std::atomic<std::uint64_t> requested_bytes{0};
  std::atomic<std::uint64_t> written_bytes{0};
  std::atomic<std::uint64_t> written_ahead_bytes{0};
  std::atomic<std::uint64_t> chunk_lookups[kLookupResults] = {};
  std::atomic<std::uint64_t> decompressions{0};
  std::atomic<double> decompress_seconds{0.0};
  std::atomic<std::uint64_t> stage_ops[kStages] = {};
  std::atomic<double> stage_seconds[kStages] = {};
  std::atomic<std::int64_t> in_flight{0};    // sum of this thread's deltas
  std::atomic<std::int64_t> queue_depth{0};  // sum of this thread's deltas
  std::atomic<std::uint64_t> malformed_messages{0};
  std::atomic<std::uint64_t> device_read_pressure{0};
  std::atomic<std::uint64_t> worker_restarts{0};
  std::atomic<std::uint64_t> restores{0};
  std::atomic<std::uint64_t> prefetch_bytes{0};
  std::atomic<std::uint64_t> prefetch_hits{0};
  std::atomic<std::uint64_t> prefetch_wasted_bytes{0};
  std::atomic<std::uint64_t> replays{0};
  std::atomic<double> replay_seconds{0.0};
  std::atomic<std::uint64_t> traces_recorded{0};
};

class ShardRegistry {
 public:
  // A shard no live thread holds (a recycled one, or a new one).
  StatsShard* Acquire();
  // `shard` (from Acquire) is no longer written by its thread.
  void Release(StatsShard* shard);

  // Calls fn(const StatsShard&) for every shard ever handed out, under the registry lock.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    MutexLock lock(&mu_);
    for (const auto& s : shards_) fn(*s);
  }

 private:
  mutable Mutex mu_;
  std::vector<std::unique_ptr<StatsShard>> shards_ LB_GUARDED_BY(mu_);
  std::vector<StatsShard*> free_ LB_GUARDED_BY(mu_);
};

// The calling thread's shard of the registry with unique id `registry_id` (ids are never
// reused, so a dead registry's cached entry never matches). The fast path is one
// thread_local compare.
StatsShard& LocalShard(std::uint64_t registry_id, const std::shared_ptr<ShardRegistry>& registry);

namespace internal {
struct ShardCache {
  std::uint64_t registry_id = 0;
  StatsShard* shard = nullptr;
};
// Trivially destructible, so reading it needs no TLS init guard.
extern thread_local ShardCache tl_shard_cache;
StatsShard& LocalShardSlow(std::uint64_t registry_id,
                           const std::shared_ptr<ShardRegistry>& registry);
}  // namespace internal

inline StatsShard& LocalShard(std::uint64_t registry_id,
                              const std::shared_ptr<ShardRegistry>& registry) {
  internal::ShardCache& c = internal::tl_shard_cache;
  if (c.registry_id == registry_id) [[likely]]
    return *c.shard;
  return internal::LocalShardSlow(registry_id, registry);
}

}  // namespace lazyblob

#endif  // LAZYBLOB_METRICS_STATS_SHARD_H_
