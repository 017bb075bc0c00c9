#include <gtest/gtest.h>

#include "core/chunk_source.h"

namespace lazyblob {
namespace {

BlobMap ThreeChunks() {
  BlobMap m;
  m.size = 4096 * 5 + 100;
  m.extents = {{0, 8192, {}}, {8192, 4096, {}}, {12288, 4096 * 2 + 100, {}}};
  return m;
}

TEST(BlobMap, CoveringPicksOverlappingExtentsOnly) {
  BlobMap m = ThreeChunks();
  EXPECT_EQ(m.Covering(0, 4096), (std::pair<size_t, size_t>{0, 1}));
  EXPECT_EQ(m.Covering(4096, 8192), (std::pair<size_t, size_t>{0, 2}));
  EXPECT_EQ(m.Covering(8192, 4096), (std::pair<size_t, size_t>{1, 2}));
  EXPECT_EQ(m.Covering(0, 1 << 20), (std::pair<size_t, size_t>{0, 3}));
  EXPECT_EQ(m.Covering(m.size - 1, 1), (std::pair<size_t, size_t>{2, 3}));
}

TEST(BlobMap, CoveringPastEndOrEmptyIsEmpty) {
  BlobMap m = ThreeChunks();
  auto [a, b] = m.Covering(m.size, 4096);
  EXPECT_EQ(a, b);
  auto [c, d] = m.Covering(0, 0);
  EXPECT_EQ(c, d);
  auto [e, f] = m.Covering(1, UINT64_MAX);
  EXPECT_EQ(e, 0u);
  EXPECT_EQ(f, 3u);
}

TEST(ChunkKey, HexRoundTrip) {
  ChunkKey k;
  for (int i = 0; i < 16; ++i) k.bytes[i] = static_cast<uint8_t>(i * 17);
  auto back = ChunkKey::FromHex(k.ToHex());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, k);
  EXPECT_FALSE(ChunkKey::FromHex("zz").ok());
}

}  // namespace
}  // namespace lazyblob
