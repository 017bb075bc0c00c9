// ParseErofsSuperblock / CheckErofsImageForCachefiles on hand-made superblocks: the magic,
// the block sizes the fscache backend serves, the size rule (a file may end inside its last
// block) and the superblock checksum, computed as the kernel computes it.
#include "store/erofs_superblock.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace lazyblob {
namespace {

void Put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// A first block with an EROFS superblock of `blocks` blocks of 2^bits bytes; with
// `checksum` the SB_CHKSUM feature is on and the crc32c filled in.
std::vector<std::uint8_t> Image(std::uint32_t blocks, std::uint8_t bits = 12,
                                bool checksum = true) {
  std::vector<std::uint8_t> b(4096, 0);
  Put32(b, 1024, kErofsMagic);
  b[1024 + 12] = bits;
  Put32(b, 1024 + 36, blocks);
  b[2000] = 0x5a;  // something for the checksum to cover
  if (checksum) {
    Put32(b, 1024 + 8, kErofsFeatureCompatSbChksum);
    const std::size_t end = std::max<std::size_t>(std::size_t{1} << bits, 1024 + 128);
    Put32(b, 1024 + 4, ErofsCrc32c(~0u, std::span(b.data() + 1024, end - 1024)));
  }
  return b;
}

TEST(ErofsSuperblock, DecodesTheFieldsAndVerifiesTheChecksum) {
  bool verified = false;
  auto sb = ParseErofsSuperblock(Image(75), &verified);
  ASSERT_TRUE(sb.ok()) << sb.status().ToString();
  EXPECT_EQ(sb->blocks, 75u);
  EXPECT_EQ(sb->block_size(), 4096u);
  EXPECT_TRUE(verified);
}

TEST(ErofsSuperblock, Crc32cIsTheCastagnoliCrcWithoutFinalInversion) {
  // crc32c("123456789") is 0xE3069283 with the final inversion.
  const std::string s = "123456789";
  const std::uint32_t raw =
      ErofsCrc32c(~0u, std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  EXPECT_EQ(~raw, 0xE3069283u);
}

TEST(ErofsSuperblock, RejectsShortInputWrongMagicAndDamage) {
  std::vector<std::uint8_t> img = Image(10);
  EXPECT_EQ(ParseErofsSuperblock(std::span(img.data(), 1100)).status().code(),
            StatusCode::kMalformed);
  std::vector<std::uint8_t> passwd(4096, 'x');
  auto bad = ParseErofsSuperblock(passwd);
  EXPECT_NE(bad.status().message().find("no EROFS magic"), std::string::npos);
  img[3000] ^= 1;  // inside the checksummed range
  EXPECT_NE(ParseErofsSuperblock(img).status().message().find("checksum mismatch"),
            std::string::npos);
  // Only the first 2048 bytes: the checksum cannot be checked, the rest still decodes.
  img[3000] ^= 1;
  bool verified = true;
  auto part = ParseErofsSuperblock(std::span(img.data(), 2048), &verified);
  ASSERT_TRUE(part.ok());
  EXPECT_FALSE(verified);
  EXPECT_FALSE(ParseErofsSuperblock(Image(10, 8, false)).ok());   // 256-byte blocks
  EXPECT_FALSE(ParseErofsSuperblock(Image(10, 17, false)).ok());  // 128 KiB blocks
}

TEST(ErofsSuperblock, CachefilesServesOnly4KiBBlocks) {
  auto small = ParseErofsSuperblock(Image(10, 9, false));
  ASSERT_TRUE(small.ok());
  Status s = CheckErofsImageForCachefiles(*small, 10 * 512);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("block size 512"), std::string::npos) << s.message();
}

TEST(ErofsSuperblock, SizeMustEndInsideTheLastBlock) {
  auto sb = ParseErofsSuperblock(Image(10));
  ASSERT_TRUE(sb.ok());
  EXPECT_TRUE(CheckErofsImageForCachefiles(*sb, 40960).ok());
  EXPECT_TRUE(CheckErofsImageForCachefiles(*sb, 36865).ok());  // 1 byte into block 10
  EXPECT_NE(CheckErofsImageForCachefiles(*sb, 36864).message().find("truncated"),
            std::string::npos);
  EXPECT_NE(CheckErofsImageForCachefiles(*sb, 2'000'000).message().find("past the image"),
            std::string::npos);
  auto empty = ParseErofsSuperblock(Image(0));
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(CheckErofsImageForCachefiles(*empty, 4096).ok());
}

}  // namespace
}  // namespace lazyblob
