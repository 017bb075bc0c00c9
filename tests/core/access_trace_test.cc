#include "core/access_trace.h"

#include <gtest/gtest.h>

#include <string>

namespace lazyblob {
namespace {

AccessTrace Trace(std::uint64_t size, std::vector<std::uint64_t> blocks) {
  AccessTrace t;
  t.blob_size = size;
  t.blocks = std::move(blocks);
  return t;
}

TEST(AccessTrace, EncodingIsFrozenByteForByte) {
  const AccessTrace t = Trace(1 << 20, {3, 1, 200, 0});
  // deltas +3, -2, +199, -200 as zigzag LEB128: 6, 3, 0x8e 0x03, 0x8f 0x03.
  const std::string want(
      "LBTR\x01\x00\x00\x10\x00\x00\x00\x00\x00\x04\x00\x00\x00"
      "\x06\x03\x8e\x03\x8f\x03",
      23);
  EXPECT_EQ(t.Encode(), want);
  Result<AccessTrace> back = AccessTrace::Decode(want);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->blob_size, t.blob_size);
  EXPECT_EQ(back->blocks, t.blocks);
}

TEST(AccessTrace, DecodeRefusesDamagedRecords) {
  const std::string good = Trace(8 * 4096, {7, 0, 5}).Encode();
  ASSERT_TRUE(AccessTrace::Decode(good).ok());
  EXPECT_EQ(AccessTrace::Decode(good + "x").status().code(), StatusCode::kMalformed);
  EXPECT_EQ(AccessTrace::Decode(good.substr(0, good.size() - 1)).status().code(),
            StatusCode::kMalformed);
  std::string bad_magic = good;
  bad_magic[0] = 'X';
  EXPECT_FALSE(AccessTrace::Decode(bad_magic).ok());
  std::string bad_version = good;
  bad_version[4] = 2;
  EXPECT_FALSE(AccessTrace::Decode(bad_version).ok());
  // Block 8 of a blob of 8 blocks lies past its end.
  EXPECT_FALSE(AccessTrace::Decode(Trace(8 * 4096, {8}).Encode()).ok());
  EXPECT_FALSE(AccessTrace::Decode("").ok());
}

TEST(AccessTrace, MergeOrdersByFirstSeenRankAndKeepsEveryBlock) {
  // Both read 10 first; base read 20 early, other read 30 early; 40 only late in base.
  const AccessTrace base = Trace(1 << 20, {10, 20, 40, 50});
  const AccessTrace other = Trace(1 << 20, {10, 30, 20});
  const AccessTrace m = AccessTrace::Merge(base, other);
  // ranks: 10: 0; 20: min(1/4, 2/3) = .25; 30: 1/3; 40: .5; 50: .75.
  EXPECT_EQ(m.blocks, (std::vector<std::uint64_t>{10, 20, 30, 40, 50}));
  EXPECT_EQ(m.blob_size, base.blob_size);
}

TEST(AccessTrace, MergeOfAnotherBlobSizeKeepsTheBase) {
  const AccessTrace base = Trace(1 << 20, {1, 2});
  EXPECT_EQ(AccessTrace::Merge(base, Trace(2 << 20, {5})).blocks, base.blocks);
  EXPECT_EQ(AccessTrace::Merge(Trace(1 << 20, {}), base).blocks, base.blocks);
}

TEST(AccessTrace, ChunksOfSkipsBlocksThatStartNoChunk) {
  BlobMap map;
  map.id = "b";
  for (std::uint64_t i = 0; i < 4; ++i) map.extents.push_back({i * 16384, 16384, {}});
  map.size = 4 * 16384;
  // Block 1 lies inside chunk 0; block 8 starts chunk 2 (twice: once).
  const AccessTrace t = Trace(map.size, {8, 1, 0, 8, 12});
  EXPECT_EQ(t.ChunksOf(map), (std::vector<std::size_t>{2, 0, 3}));
  // A record of another size names nothing of this map.
  EXPECT_TRUE(Trace(map.size + 4096, {0}).ChunksOf(map).empty());
}

}  // namespace
}  // namespace lazyblob
