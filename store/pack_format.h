// Pack file format: encoders and decoders of the bytes in packs/pack-NNNNNN.lbp
// (store/FORMAT.md is the normative description; keep both in sync).
//
// Every decoder here takes untrusted bytes and never reads outside the given span.
// Thread-safety: pure functions.
#ifndef LAZYBLOB_STORE_PACK_FORMAT_H_
#define LAZYBLOB_STORE_PACK_FORMAT_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/chunk_source.h"
#include "core/status.h"
#include "store/chunker.h"

namespace lazyblob {

inline constexpr std::uint32_t kPackFormatVersion = 1;
inline constexpr std::size_t kPackHeaderBytes = 52;
inline constexpr std::size_t kRecordHeaderBytes = 68;
inline constexpr std::uint32_t kPackMagic = 0x4B50424C;    // "LBPK" on disk
inline constexpr std::uint32_t kRecordMagic = 0x5250424C;  // "LBPR" on disk

// Stored values are frozen (FORMAT.md).
enum class RecordType : std::uint8_t { kChunk = 1, kManifest = 2, kTombstone = 3 };
enum class Codec : std::uint8_t { kRaw = 0, kZstd = 1 };

struct PackHeader {
  std::uint32_t pack_id = 0;
  std::array<std::uint8_t, 16> store_uuid{};
  ChunkerOptions default_chunker;
};

struct RecordHeader {
  RecordType type = RecordType::kChunk;
  Codec codec = Codec::kRaw;
  ChunkKey key;                           // chunk: XXH3-128 of the raw bytes; else zero
  std::array<std::uint8_t, 32> sha256{};  // chunk: of the raw bytes; else of the payload
  std::uint32_t raw_len = 0;
  std::uint32_t stored_len = 0;  // payload bytes following the header
};

// A blob's map as written into the pack stream (and, minus seq, into the index).
struct BlobManifest {
  std::uint64_t seq = 0;  // store-wide order of manifests and tombstones
  std::string id;
  std::uint64_t size = 0;
  std::int64_t created_unix_s = 0;
  std::array<std::uint8_t, 32> sha256{};
  ChunkerOptions chunker;
  std::vector<ChunkExtent> extents;  // contiguous from offset 0
};

struct Tombstone {
  std::uint64_t seq = 0;
  std::string id;
  std::int64_t removed_unix_s = 0;
};

std::array<std::uint8_t, kPackHeaderBytes> EncodePackHeader(const PackHeader& h);
Result<PackHeader> DecodePackHeader(std::span<const std::uint8_t> bytes);

std::array<std::uint8_t, kRecordHeaderBytes> EncodeRecordHeader(const RecordHeader& h);
// kCorruption on bad magic/version/type/codec/checksum.
Result<RecordHeader> DecodeRecordHeader(std::span<const std::uint8_t> bytes);

// Manifest/tombstone payloads. Extent offsets are implicit (running sum of lengths).
std::vector<std::uint8_t> EncodeManifest(const BlobManifest& m);
Result<BlobManifest> DecodeManifest(std::span<const std::uint8_t> bytes);
std::vector<std::uint8_t> EncodeTombstone(const Tombstone& t);
Result<Tombstone> DecodeTombstone(std::span<const std::uint8_t> bytes);

// 13 bytes: kind u8, min/avg/max u32 LE. Used in pack headers, manifests and the index.
void AppendChunkerParams(const ChunkerOptions& c, std::vector<std::uint8_t>* out);
Result<ChunkerOptions> DecodeChunkerParams(std::span<const std::uint8_t> bytes);

// Little-endian helpers shared by the store's codecs.
void PutU16(std::vector<std::uint8_t>* out, std::uint16_t v);
void PutU32(std::vector<std::uint8_t>* out, std::uint32_t v);
void PutU64(std::vector<std::uint8_t>* out, std::uint64_t v);
std::uint16_t GetU16(const std::uint8_t* p);
std::uint32_t GetU32(const std::uint8_t* p);
std::uint64_t GetU64(const std::uint8_t* p);

// Reads fields from an untrusted span; any read past the end sets failed().
class ByteReader {
 public:
  explicit ByteReader(std::span<const std::uint8_t> bytes) : b_(bytes) {}
  std::uint8_t U8();
  std::uint16_t U16();
  std::uint32_t U32();
  std::uint64_t U64();
  std::span<const std::uint8_t> Bytes(std::size_t n);
  bool failed() const { return failed_; }
  std::size_t remaining() const { return b_.size() - pos_; }

 private:
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_PACK_FORMAT_H_
