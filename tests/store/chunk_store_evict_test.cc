// ChunkStore::EvictPacks: the bounded origin cache's eviction (whole packs, oldest first,
// pinned chunks carried forward), its interplay with concurrent readers, and crash safety.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "core/aligned_buffer.h"
#include "store/chunk_store.h"
#include "store/hashing.h"
#include "store_test_util.h"

namespace lazyblob {
namespace {

using testing::RandomBytes;
using testing::TempDir;

// A raw (incompressible) chunk of 64 KiB from `seed`.
StoredChunk RawChunk(std::uint64_t seed) {
  StoredChunk c;
  auto raw = RandomBytes(65536, seed);
  c.key = ChunkKeyOf(raw);
  c.sha256 = Sha256Of(raw);
  c.codec = Codec::kRaw;
  c.raw_len = 65536;
  c.payload.resize(raw.size());
  std::memcpy(c.payload.data(), raw.data(), raw.size());
  return c;
}

class EvictPacks : public ::testing::Test {
 protected:
  void SetUp() override {
    auto o = testing::WriterOptions(tmp_ / "cache");
    o.pack_target_bytes = 1 << 20;  // ~15 chunks per pack
    auto s = ChunkStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    // 8 puts of 10 chunks: 80 chunks over several packs, oldest first.
    for (int put = 0; put < 8; ++put) {
      std::vector<StoredChunk> batch;
      for (int i = 0; i < 10; ++i) batch.push_back(RawChunk(put * 10 + i + 1));
      ASSERT_TRUE(store_->PutChunks(batch).ok());
      for (const auto& c : batch) chunks_.push_back(c);
    }
  }
  bool Readable(const StoredChunk& c) {
    AlignedBuffer buf(65536);
    return store_->ReadChunk(ChunkExtent{0, 65536, c.key}, buf.span()).ok();
  }

  TempDir tmp_;
  std::unique_ptr<ChunkStore> store_;
  std::vector<StoredChunk> chunks_;
};

TEST_F(EvictPacks, DropsTheOldestPacksDownToTheBoundAndCarriesPinnedChunksForward) {
  ASSERT_OK_AND_ASSIGN(std::uint64_t before, store_->PackBytes());
  ASSERT_GT(before, 5u << 20);
  const std::uint64_t target = 2u << 20;
  // The very first chunk (in the oldest pack) is pinned by a reader.
  const ChunkKey pinned = chunks_.front().key;
  ASSERT_OK_AND_ASSIGN(EvictResult r,
                       store_->EvictPacks(target, [&](const ChunkKey& k) { return k == pinned; }));
  EXPECT_GT(r.packs_evicted, 0u);
  EXPECT_EQ(r.chunks_kept, 1u);
  EXPECT_LE(r.pack_bytes, target + 65536 + 4096);  // the carried chunk may pass the bound
  ASSERT_OK_AND_ASSIGN(std::uint64_t after, store_->PackBytes());
  EXPECT_EQ(after, r.pack_bytes);
  EXPECT_TRUE(Readable(chunks_.front())) << "a pinned chunk was evicted";
  EXPECT_TRUE(Readable(chunks_.back())) << "the newest chunks go last";
  int gone = 0;
  for (const auto& c : chunks_) gone += !Readable(c);
  EXPECT_EQ(static_cast<std::uint64_t>(gone), r.chunks_evicted);
  ASSERT_OK_AND_ASSIGN(VerifyReport v, store_->Verify());
  EXPECT_TRUE(v.clean());
  // The index still agrees with the packs alone.
  store_.reset();
  auto rebuilt = ChunkStore::RebuildIndex(testing::WriterOptions(tmp_ / "cache"));
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(rebuilt->chunks, chunks_.size() - r.chunks_evicted);
}

TEST_F(EvictPacks, UnderTheBoundNothingMoves) {
  ASSERT_OK_AND_ASSIGN(std::uint64_t before, store_->PackBytes());
  ASSERT_OK_AND_ASSIGN(EvictResult r,
                       store_->EvictPacks(before, [](const ChunkKey&) { return false; }));
  EXPECT_EQ(r.packs_evicted, 0u);
  EXPECT_EQ(r.pack_bytes, before);
  for (const auto& c : chunks_) EXPECT_TRUE(Readable(c));
}

// Readers of chunks that eviction keeps never fail, even while their pack is rewritten
// under them (ReadChunk finds the new place when the old pack is gone).
TEST_F(EvictPacks, ReadersOfKeptChunksNeverFailDuringEviction) {
  std::set<ChunkKey> keep;
  std::vector<StoredChunk> kept;
  for (std::size_t i = 0; i < chunks_.size(); i += 3) {
    keep.insert(chunks_[i].key);
    kept.push_back(chunks_[i]);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      while (!stop.load()) {
        for (std::size_t i = t; i < kept.size(); i += 2) failures += !Readable(kept[i]);
      }
    });
  }
  for (std::uint64_t target : {4u << 20, 3u << 20, 2u << 20, 1u << 20}) {
    auto r = store_->EvictPacks(target, [&](const ChunkKey& k) { return keep.count(k) != 0; });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (const auto& c : chunks_) EXPECT_EQ(Readable(c), keep.count(c.key) != 0);
}

}  // namespace
}  // namespace lazyblob
