#include "store/pack_format.h"

#include <gtest/gtest.h>

#include "store_test_util.h"

namespace lazyblob {
namespace {

TEST(PackFormat, ChunkRecordHeaderIsEncodedByteForByte) {
  RecordHeader h;
  h.type = RecordType::kChunk;
  h.codec = Codec::kZstd;
  for (int i = 0; i < 16; ++i) h.key.bytes[i] = static_cast<std::uint8_t>(i);
  for (int i = 0; i < 32; ++i) h.sha256[i] = static_cast<std::uint8_t>(0xa0 + i);
  h.raw_len = 0x10000;
  h.stored_len = 0x1234;
  auto bytes = EncodeRecordHeader(h);
  const std::vector<std::uint8_t> expected_prefix = {
      'L', 'B', 'P', 'R', 1, 1, 1, 0,  // magic, version, type chunk, codec zstd, reserved
      0,   1,   2,   3,   4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,  // key
  };
  ASSERT_EQ(bytes.size(), 68u);
  EXPECT_TRUE(std::equal(expected_prefix.begin(), expected_prefix.end(), bytes.begin()));
  for (int i = 0; i < 32; ++i) EXPECT_EQ(bytes[24 + i], 0xa0 + i);
  const std::uint8_t lens[] = {0x00, 0x00, 0x01, 0x00, 0x34, 0x12, 0x00, 0x00};
  EXPECT_TRUE(std::equal(std::begin(lens), std::end(lens), bytes.begin() + 56));
  // XXH32(bytes[0..64), seed 0), little-endian; pinned.
  const std::uint8_t check[] = {bytes[64], bytes[65], bytes[66], bytes[67]};
  EXPECT_EQ(GetU32(check), 0x8088dcdcu) << std::hex << GetU32(check);

  auto decoded = DecodeRecordHeader(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->key, h.key);
  EXPECT_EQ(decoded->sha256, h.sha256);
  EXPECT_EQ(decoded->raw_len, h.raw_len);
  EXPECT_EQ(decoded->stored_len, h.stored_len);
  EXPECT_EQ(decoded->codec, Codec::kZstd);
}

TEST(PackFormat, DamagedRecordHeaderIsRejected) {
  RecordHeader h;
  auto bytes = EncodeRecordHeader(h);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto copy = bytes;
    copy[i] ^= 0x40;
    EXPECT_EQ(DecodeRecordHeader(copy).status().code(), StatusCode::kCorruption) << i;
  }
  EXPECT_FALSE(DecodeRecordHeader(std::span(bytes).first(67)).ok());
}

TEST(PackFormat, PackHeaderRoundTrips) {
  PackHeader h;
  h.pack_id = 7;
  h.store_uuid[0] = 0xee;
  h.default_chunker = testing::SmallCdc();
  auto bytes = EncodePackHeader(h);
  EXPECT_EQ(bytes[0], 'L');
  EXPECT_EQ(bytes[3], 'K');
  EXPECT_EQ(bytes[8], 7);
  auto d = DecodePackHeader(bytes);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->pack_id, 7u);
  EXPECT_EQ(d->store_uuid, h.store_uuid);
  EXPECT_EQ(d->default_chunker, h.default_chunker);
  bytes[20] ^= 1;
  EXPECT_FALSE(DecodePackHeader(bytes).ok());
}

TEST(PackFormat, ManifestRoundTripsAndRejectsTruncation) {
  BlobManifest m;
  m.seq = 9;
  m.id = "image-1";
  m.size = 8192 + 100;
  m.created_unix_s = 1700000000;
  m.sha256[3] = 3;
  m.chunker = testing::SmallCdc();
  m.extents = {{0, 8192, {}}, {8192, 100, {}}};
  m.extents[1].key.bytes[0] = 1;
  auto bytes = EncodeManifest(m);
  auto d = DecodeManifest(bytes);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->id, m.id);
  EXPECT_EQ(d->seq, 9u);
  EXPECT_EQ(d->extents.size(), 2u);
  EXPECT_EQ(d->extents[1].blob_offset, 8192u);
  EXPECT_EQ(d->extents[1].key, m.extents[1].key);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(DecodeManifest(std::span(bytes).first(n)).ok()) << n;
  }
  Tombstone t{10, "image-1", 5};
  auto td = DecodeTombstone(EncodeTombstone(t));
  ASSERT_TRUE(td.ok());
  EXPECT_EQ(td->id, "image-1");
  EXPECT_EQ(td->seq, 10u);
}

}  // namespace
}  // namespace lazyblob
