#include "metrics/stats_shard.h"

#include <algorithm>

namespace lazyblob {

StatsShard* ShardRegistry::Acquire() {
  MutexLock lock(&mu_);
  if (!free_.empty()) {
    StatsShard* s = free_.back();
    free_.pop_back();
    return s;
  }
  shards_.push_back(std::make_unique<StatsShard>());
  return shards_.back().get();
}

void ShardRegistry::Release(StatsShard* shard) {
  // The lock orders the old owner's last writes before the next owner's first read.
  MutexLock lock(&mu_);
  free_.push_back(shard);
}

namespace internal {

thread_local ShardCache tl_shard_cache;

namespace {

// Every shard this thread holds, one per live registry it has written to; released to
// their registries when the thread exits.
class ThreadShards {
 public:
  ~ThreadShards() {
    tl_shard_cache = ShardCache{};
    for (auto& e : entries_) {
      if (auto reg = e.registry.lock()) reg->Release(e.shard);
    }
  }

  StatsShard& Find(std::uint64_t id, const std::shared_ptr<ShardRegistry>& registry) {
    for (auto& e : entries_) {
      if (e.id == id) return *e.shard;
    }
    // Forget registries that are gone, so a thread outliving many of them stays small.
    std::erase_if(entries_, [](const Entry& e) { return e.registry.expired(); });
    entries_.push_back(Entry{id, registry->Acquire(), registry});
    return *entries_.back().shard;
  }

 private:
  struct Entry {
    std::uint64_t id;
    StatsShard* shard;
    std::weak_ptr<ShardRegistry> registry;
  };
  std::vector<Entry> entries_;
};

thread_local ThreadShards tl_thread_shards;

}  // namespace

StatsShard& LocalShardSlow(std::uint64_t registry_id,
                           const std::shared_ptr<ShardRegistry>& registry) {
  StatsShard& s = tl_thread_shards.Find(registry_id, registry);
  tl_shard_cache = ShardCache{registry_id, &s};
  return s;
}

}  // namespace internal
}  // namespace lazyblob
