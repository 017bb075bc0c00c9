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

TEST(AccessTrace, MergeKeepsTheBaseOrderAndPlacesTheOthersBlocksAfterTheirPredecessor) {
  // other read 5 first, then 10, then 30 and 35 (not in base) after 10, and 60 after 50.
  const AccessTrace base = Trace(1 << 20, {10, 20, 40, 50});
  const AccessTrace other = Trace(1 << 20, {5, 10, 30, 35, 20, 50, 60});
  const AccessTrace m = AccessTrace::Merge(base, other);
  EXPECT_EQ(m.blocks, (std::vector<std::uint64_t>{5, 10, 30, 35, 20, 40, 50, 60}));
  EXPECT_EQ(m.blob_size, base.blob_size);
  // A record that holds the other's blocks is its own merge with it, either way round.
  EXPECT_EQ(AccessTrace::Merge(other, base).blocks,
            (std::vector<std::uint64_t>{5, 10, 30, 35, 20, 40, 50, 60}));
}

TEST(AccessTrace, MergeOfTwoSimilarStartsKeepsTheirRunsTogether) {
  // Two starts that read the same two files (runs 100.. and 200..), the second with two
  // extra chunks of the first file written ahead. Ordering by relative rank (the first
  // design) zipped the runs into 100, 200, 101, 201, ...: no coalescing fetch-ahead.
  const AccessTrace a = Trace(1 << 30, {100, 101, 102, 103, 200, 201, 202, 203});
  const AccessTrace b = Trace(1 << 30, {100, 101, 102, 103, 104, 105, 200, 201, 202, 203});
  EXPECT_EQ(AccessTrace::Merge(a, b).blocks, b.blocks);
  EXPECT_EQ(AccessTrace::Merge(b, a).blocks, b.blocks);
  // Merging again changes nothing.
  EXPECT_EQ(AccessTrace::Merge(AccessTrace::Merge(a, b), b).blocks, b.blocks);
}

TEST(AccessTrace, MergeNamesEachBlockOnceEvenWhenTheBaseRepeatsOne) {
  const AccessTrace base = Trace(1 << 20, {1, 2, 1});
  const AccessTrace other = Trace(1 << 20, {1, 3});
  EXPECT_EQ(AccessTrace::Merge(base, other).blocks, (std::vector<std::uint64_t>{1, 3, 2}));
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
