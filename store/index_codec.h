// The values of the store's RocksDB index (FORMAT.md "Index"), encoded and decoded. The
// index is a cache of the packs, but its bytes are read back from disk, so the decoders
// treat them as untrusted: any inconsistency is kCorruption, never a crash (fuzzed by
// store/fuzz/index_codec_fuzz.cc). Encoders are pinned byte for byte by the tests.
//
// Thread-safety: stateless; call from any thread.
#ifndef LAZYBLOB_STORE_INDEX_CODEC_H_
#define LAZYBLOB_STORE_INDEX_CODEC_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/chunk_source.h"
#include "core/status.h"
#include "store/blob_info.h"
#include "store/pack_format.h"

namespace lazyblob {

// Where a chunk lives: the value of the "chunks" column family.
struct ChunkLocation {
  std::uint32_t pack_id = 0;
  std::uint64_t offset = 0;  // of the record header in the pack
  std::uint32_t stored_len = 0;
  std::uint32_t raw_len = 0;
  Codec codec = Codec::kRaw;
  Sha256Digest sha256{};
};

// The value of the "blobs" column family.
struct BlobRecord {
  BlobInfo info;
  std::uint64_t seq = 0;  // of the manifest that created it
  std::uint32_t manifest_pack = 0;
  std::uint64_t manifest_offset = 0;
};

// "chunks" value: 53 bytes.
std::vector<std::uint8_t> EncodeChunkValue(const ChunkLocation& l);
Result<ChunkLocation> DecodeChunkValue(std::span<const std::uint8_t> b);

// "blobs" value (the key, the blob id, is passed in): version 1, 90 bytes.
std::vector<std::uint8_t> EncodeBlobValue(const BlobRecord& r);
Result<BlobRecord> DecodeBlobValue(std::string_view id, std::span<const std::uint8_t> b);

// "blob_maps" value: extent count, then (length, key) per extent; offsets are implicit.
std::vector<std::uint8_t> EncodeMap(const std::vector<ChunkExtent>& extents);
Result<std::vector<ChunkExtent>> DecodeMap(std::span<const std::uint8_t> b);

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_INDEX_CODEC_H_
