#include "store/index_codec.h"

#include <cstring>

namespace lazyblob {
namespace {

constexpr std::uint8_t kBlobRecordVersion = 1;
constexpr std::size_t kChunkValueBytes = 53;
constexpr std::size_t kExtentBytes = 20;

}  // namespace

std::vector<std::uint8_t> EncodeChunkValue(const ChunkLocation& l) {
  std::vector<std::uint8_t> v;
  v.reserve(kChunkValueBytes);
  PutU32(&v, l.pack_id);
  PutU64(&v, l.offset);
  PutU32(&v, l.stored_len);
  PutU32(&v, l.raw_len);
  v.push_back(static_cast<std::uint8_t>(l.codec));
  v.insert(v.end(), l.sha256.begin(), l.sha256.end());
  return v;
}

Result<ChunkLocation> DecodeChunkValue(std::span<const std::uint8_t> b) {
  if (b.size() != kChunkValueBytes) return Corruption("index: chunk value has a bad size");
  ChunkLocation l;
  const std::uint8_t* p = b.data();
  l.pack_id = GetU32(p);
  l.offset = GetU64(p + 4);
  l.stored_len = GetU32(p + 12);
  l.raw_len = GetU32(p + 16);
  if (p[20] > 1) return Corruption("index: chunk value has an unknown codec");
  l.codec = static_cast<Codec>(p[20]);
  std::memcpy(l.sha256.data(), p + 21, 32);
  return l;
}

std::vector<std::uint8_t> EncodeBlobValue(const BlobRecord& r) {
  std::vector<std::uint8_t> v;
  v.push_back(kBlobRecordVersion);
  PutU64(&v, r.info.size);
  PutU64(&v, r.info.chunk_count);
  AppendChunkerParams(r.info.chunker, &v);
  v.insert(v.end(), r.info.sha256.begin(), r.info.sha256.end());
  PutU64(&v, static_cast<std::uint64_t>(r.info.created_unix_s));
  PutU64(&v, r.seq);
  PutU32(&v, r.manifest_pack);
  PutU64(&v, r.manifest_offset);
  return v;
}

Result<BlobRecord> DecodeBlobValue(std::string_view id, std::span<const std::uint8_t> b) {
  ByteReader rd(b);
  BlobRecord r;
  r.info.id = std::string(id);
  if (rd.U8() != kBlobRecordVersion) return Corruption("index: blob record has a bad version");
  r.info.size = rd.U64();
  r.info.chunk_count = rd.U64();
  auto params = rd.Bytes(13);
  auto sha = rd.Bytes(32);
  r.info.created_unix_s = static_cast<std::int64_t>(rd.U64());
  r.seq = rd.U64();
  r.manifest_pack = rd.U32();
  r.manifest_offset = rd.U64();
  if (rd.failed() || rd.remaining() != 0) return Corruption("index: blob record is malformed");
  std::memcpy(r.info.sha256.data(), sha.data(), 32);
  LB_ASSIGN_OR_RETURN(r.info.chunker, DecodeChunkerParams(params));
  return r;
}

std::vector<std::uint8_t> EncodeMap(const std::vector<ChunkExtent>& extents) {
  std::vector<std::uint8_t> v;
  v.reserve(4 + extents.size() * kExtentBytes);
  PutU32(&v, static_cast<std::uint32_t>(extents.size()));
  for (const ChunkExtent& e : extents) {
    PutU32(&v, e.length);
    v.insert(v.end(), e.key.bytes.begin(), e.key.bytes.end());
  }
  return v;
}

Result<std::vector<ChunkExtent>> DecodeMap(std::span<const std::uint8_t> b) {
  if (b.size() < 4 || (b.size() - 4) % kExtentBytes != 0 ||
      GetU32(b.data()) != (b.size() - 4) / kExtentBytes) {
    return Corruption("index: blob map is malformed");
  }
  std::vector<ChunkExtent> extents(GetU32(b.data()));
  const std::uint8_t* p = b.data() + 4;
  std::uint64_t offset = 0;
  for (ChunkExtent& e : extents) {
    e.blob_offset = offset;
    e.length = GetU32(p);
    std::memcpy(e.key.bytes.data(), p + 4, 16);
    offset += e.length;
    p += kExtentBytes;
  }
  return extents;
}

}  // namespace lazyblob
