#include "store/chunker.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "core/aligned_buffer.h"
#include "store_test_util.h"

namespace lazyblob {
namespace {

using testing::RandomBytes;

std::vector<std::uint64_t> CutOffsets(const Chunker& c, std::span<const std::byte> data) {
  std::vector<std::uint64_t> offsets;
  std::uint64_t off = 0;
  for (std::uint32_t len : c.SplitAll(data)) {
    offsets.push_back(off);
    off += len;
  }
  return offsets;
}

// The cut points are part of the store format: a blob re-imported by a newer version
// must produce the same chunks. These offsets were produced by the first version.
TEST(Chunker, CutPointsArePinnedForDefaultOptions) {
  auto data = RandomBytes(1 << 20, 42);
  const std::vector<std::uint64_t> expected = {0,      94208,  188416, 212992, 274432,
                                               397312, 495616, 606208, 700416, 724992,
                                               794624, 897024, 974848};
  EXPECT_EQ(CutOffsets(Chunker(ChunkerOptions{}), data), expected);
}

TEST(Chunker, CutPointsArePinnedForSmallOptions) {
  auto data = RandomBytes(256 << 10, 42);
  const std::vector<std::uint64_t> expected = {0,      16384,  20480,  32768,  61440,  77824,
                                               94208,  106496, 122880, 131072, 151552, 176128,
                                               188416, 212992, 229376, 245760};
  EXPECT_EQ(CutOffsets(Chunker(testing::SmallCdc()), data), expected);
}

TEST(Chunker, CutsAreAlignedAndRespectMinAndMax) {
  const ChunkerOptions o = testing::SmallCdc();
  Chunker c(o);
  for (std::uint64_t seed : {1, 2, 3}) {
    for (bool text : {false, true}) {
      auto data = RandomBytes((3 << 20) + 1234, seed, text);
      auto lengths = c.SplitAll(data);
      std::uint64_t total = 0;
      for (std::size_t i = 0; i < lengths.size(); ++i) {
        total += lengths[i];
        EXPECT_LE(lengths[i], o.max_bytes);
        if (i + 1 < lengths.size()) {
          EXPECT_EQ(lengths[i] % kBlockSize, 0u);
          EXPECT_GE(lengths[i], o.min_bytes);
        }
      }
      EXPECT_EQ(total, data.size());
      // The mean lands near avg_bytes (between min and max, and not degenerate).
      const double mean = double(total) / double(lengths.size());
      EXPECT_GT(mean, o.avg_bytes / 2);
      EXPECT_LT(mean, o.avg_bytes * 2);
    }
  }
}

TEST(Chunker, ConstantDataIsCutIntoEqualChunks) {
  std::vector<std::byte> zeros(1 << 20);
  ChunkerOptions o = testing::SmallCdc();
  auto lengths = Chunker(o).SplitAll(zeros);
  ASSERT_GT(lengths.size(), 1u);
  for (auto len : lengths) EXPECT_EQ(len, lengths[0]);  // so they all dedup to one chunk
  EXPECT_EQ(lengths[0], 16384u);
}

TEST(Chunker, InsertionOnlyShiftsNearbyCuts) {
  auto data = RandomBytes(2 << 20, 7);
  auto shifted = data;
  auto insert = RandomBytes(kBlockSize, 8);
  shifted.insert(shifted.begin() + (1 << 20), insert.begin(), insert.end());
  Chunker c(testing::SmallCdc());
  auto a = CutOffsets(c, data);
  auto b = CutOffsets(c, shifted);
  std::size_t common = 0;
  for (std::uint64_t off : a) {
    std::uint64_t moved = off >= (1 << 20) ? off + kBlockSize : off;
    if (std::binary_search(b.begin(), b.end(), moved)) ++common;
  }
  EXPECT_GT(common, a.size() * 9 / 10);
}

TEST(Chunker, FixedChunkerCutsEveryAvgBytes) {
  ChunkerOptions o;
  o.kind = ChunkerKind::kFixed;
  o.min_bytes = o.avg_bytes = o.max_bytes = 8192;
  ASSERT_TRUE(o.Validate().ok());
  auto data = RandomBytes(8192 * 5 + 100, 3);
  auto lengths = Chunker(o).SplitAll(data);
  EXPECT_EQ(lengths, (std::vector<std::uint32_t>{8192, 8192, 8192, 8192, 8192, 100}));
}

TEST(Chunker, OptionsValidation) {
  EXPECT_TRUE(ChunkerOptions{}.Validate().ok());
  ChunkerOptions o;
  o.min_bytes = 1000;
  EXPECT_EQ(o.Validate().code(), StatusCode::kInvalidArgument);
  o = ChunkerOptions{};
  o.avg_bytes = 12288;  // not a power of two
  EXPECT_FALSE(o.Validate().ok());
  o = ChunkerOptions{};
  o.min_bytes = 128 * 1024;  // min > avg
  EXPECT_FALSE(o.Validate().ok());
  auto parsed = ChunkerOptions::Parse("cdc:4096:16384:65536");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, testing::SmallCdc());
  EXPECT_EQ(ChunkerOptions::Parse(parsed->ToString())->ToString(), "cdc:4096:16384:65536");
  EXPECT_EQ(ChunkerOptions::Parse("fixed:65536")->kind, ChunkerKind::kFixed);
  EXPECT_FALSE(ChunkerOptions::Parse("cdc:1:2").ok());
  EXPECT_FALSE(ChunkerOptions::Parse("rabin:4096").ok());
}

}  // namespace
}  // namespace lazyblob
