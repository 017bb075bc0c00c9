#include "core/chunk_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace lazyblob {
namespace {

ChunkKey Key(std::uint8_t n) {
  ChunkKey k;
  k.bytes[0] = n;
  k.bytes[15] = n;
  return k;
}

ChunkCache::Loader BlockLoader(std::atomic<int>* calls, std::size_t size = kBlockSize) {
  return [calls, size]() -> Result<ChunkCache::Buffer> {
    ++*calls;
    return ChunkCache::Buffer(std::make_shared<AlignedBuffer>(size));
  };
}

TEST(ChunkCache, SecondLookupIsServedFromTheCache) {
  ChunkCache cache(1 << 20);
  std::atomic<int> calls{0};
  auto a = cache.GetOrLoad(Key(1), BlockLoader(&calls));
  auto b = cache.GetOrLoad(Key(1), BlockLoader(&calls));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(a->source, ChunkCache::Source::kLoaded);
  EXPECT_EQ(b->source, ChunkCache::Source::kCached);
  EXPECT_EQ(a->buffer, b->buffer);
}

TEST(ChunkCache, FailedLoadsAreNotCached) {
  ChunkCache cache(1 << 20);
  int calls = 0;
  auto fail = [&]() -> Result<ChunkCache::Buffer> {
    ++calls;
    return Corruption("bad");
  };
  EXPECT_EQ(cache.GetOrLoad(Key(1), fail).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(cache.GetOrLoad(Key(1), fail).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(cache.size_bytes(), 0u);
}

TEST(ChunkCache, StaysWithinItsByteBudgetEvictingLeastRecentlyUsed) {
  // 16 shards of 2 blocks each; keys 1, 17, 33 share shard 1.
  ChunkCache cache(16 * 2 * kBlockSize);
  std::atomic<int> calls{0};
  ASSERT_TRUE(cache.GetOrLoad(Key(1), BlockLoader(&calls)).ok());
  ASSERT_TRUE(cache.GetOrLoad(Key(17), BlockLoader(&calls)).ok());
  ASSERT_TRUE(cache.GetOrLoad(Key(1), BlockLoader(&calls)).ok());   // 1 is now most recent
  ASSERT_TRUE(cache.GetOrLoad(Key(33), BlockLoader(&calls)).ok());  // evicts 17
  EXPECT_EQ(calls.load(), 3);
  EXPECT_LE(cache.size_bytes(), 2 * kBlockSize);
  ASSERT_TRUE(cache.GetOrLoad(Key(1), BlockLoader(&calls)).ok());
  EXPECT_EQ(calls.load(), 3);
  ASSERT_TRUE(cache.GetOrLoad(Key(17), BlockLoader(&calls)).ok());
  EXPECT_EQ(calls.load(), 4);
}

TEST(ChunkCache, EvictedBufferStaysValidForItsHolder) {
  ChunkCache cache(16 * kBlockSize);
  std::atomic<int> calls{0};
  auto held = cache.GetOrLoad(Key(1), BlockLoader(&calls));
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(cache.GetOrLoad(Key(17), BlockLoader(&calls)).ok());  // evicts key 1
  EXPECT_EQ(held->buffer->data()[0], held->buffer->data()[0]);      // ASan: no use after free
  EXPECT_EQ(held->buffer->size(), kBlockSize);
}

TEST(ChunkCache, ConcurrentMissesRunTheLoaderOnce) {
  ChunkCache cache(0);  // no caching: only single-flight can dedupe
  std::atomic<int> calls{0};
  std::atomic<bool> go{false};
  std::atomic<int> started{0};
  auto slow = [&]() -> Result<ChunkCache::Buffer> {
    ++calls;
    while (!go.load()) std::this_thread::yield();
    return ChunkCache::Buffer(std::make_shared<AlignedBuffer>(kBlockSize));
  };
  std::vector<std::thread> threads;
  std::vector<ChunkCache::Buffer> got(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      ++started;
      auto r = cache.GetOrLoad(Key(5), slow);
      if (r.ok()) got[i] = r->buffer;
    });
  }
  while (started.load() < 8 || calls.load() < 1) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let all join the flight
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  for (auto& b : got) EXPECT_EQ(b, got[0]);
}

}  // namespace
}  // namespace lazyblob
