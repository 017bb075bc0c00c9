#include "store/pack_format.h"

#include <xxhash.h>

#include <cstring>

namespace lazyblob {

void PutU16(std::vector<std::uint8_t>* out, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) out->push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void PutU32(std::vector<std::uint8_t>* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void PutU64(std::vector<std::uint8_t>* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint16_t GetU16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }
std::uint32_t GetU32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
std::uint64_t GetU64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

std::span<const std::uint8_t> ByteReader::Bytes(std::size_t n) {
  if (failed_ || remaining() < n) {
    failed_ = true;
    return {};
  }
  auto s = b_.subspan(pos_, n);
  pos_ += n;
  return s;
}
std::uint8_t ByteReader::U8() {
  auto s = Bytes(1);
  return s.empty() ? 0 : s[0];
}
std::uint16_t ByteReader::U16() {
  auto s = Bytes(2);
  return s.empty() ? 0 : GetU16(s.data());
}
std::uint32_t ByteReader::U32() {
  auto s = Bytes(4);
  return s.empty() ? 0 : GetU32(s.data());
}
std::uint64_t ByteReader::U64() {
  auto s = Bytes(8);
  return s.empty() ? 0 : GetU64(s.data());
}

void AppendChunkerParams(const ChunkerOptions& c, std::vector<std::uint8_t>* out) {
  out->push_back(static_cast<std::uint8_t>(c.kind));
  PutU32(out, c.min_bytes);
  PutU32(out, c.avg_bytes);
  PutU32(out, c.max_bytes);
}

Result<ChunkerOptions> DecodeChunkerParams(std::span<const std::uint8_t> bytes) {
  ByteReader r(bytes);
  ChunkerOptions c;
  c.kind = static_cast<ChunkerKind>(r.U8());
  c.min_bytes = r.U32();
  c.avg_bytes = r.U32();
  c.max_bytes = r.U32();
  if (r.failed()) return Corruption("chunker parameters are truncated");
  if (!c.Validate().ok()) return Corruption("stored chunker parameters are invalid");
  return c;
}

std::array<std::uint8_t, kPackHeaderBytes> EncodePackHeader(const PackHeader& h) {
  std::vector<std::uint8_t> v;
  PutU32(&v, kPackMagic);
  PutU32(&v, kPackFormatVersion);
  PutU32(&v, h.pack_id);
  PutU32(&v, 0);
  v.insert(v.end(), h.store_uuid.begin(), h.store_uuid.end());
  std::vector<std::uint8_t> params;
  AppendChunkerParams(h.default_chunker, &params);
  v.push_back(params[0]);
  v.insert(v.end(), 3, 0);
  v.insert(v.end(), params.begin() + 1, params.end());
  PutU32(&v, XXH32(v.data(), v.size(), 0));
  std::array<std::uint8_t, kPackHeaderBytes> out{};
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

Result<PackHeader> DecodePackHeader(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kPackHeaderBytes) return Corruption("pack header is truncated");
  const std::uint8_t* p = bytes.data();
  if (GetU32(p) != kPackMagic) return Corruption("not a lazyblob pack (bad magic)");
  if (GetU32(p + 4) != kPackFormatVersion) return Corruption("unsupported pack format version");
  if (GetU32(p + 48) != XXH32(p, 48, 0)) return Corruption("pack header checksum mismatch");
  PackHeader h;
  h.pack_id = GetU32(p + 8);
  std::memcpy(h.store_uuid.data(), p + 16, 16);
  std::uint8_t params[13];
  params[0] = p[32];
  std::memcpy(params + 1, p + 36, 12);
  LB_ASSIGN_OR_RETURN(h.default_chunker, DecodeChunkerParams(params));
  return h;
}

std::array<std::uint8_t, kRecordHeaderBytes> EncodeRecordHeader(const RecordHeader& h) {
  std::array<std::uint8_t, kRecordHeaderBytes> out{};
  std::vector<std::uint8_t> v;
  v.reserve(kRecordHeaderBytes);
  PutU32(&v, kRecordMagic);
  v.push_back(kPackFormatVersion);
  v.push_back(static_cast<std::uint8_t>(h.type));
  v.push_back(static_cast<std::uint8_t>(h.codec));
  v.push_back(0);
  v.insert(v.end(), h.key.bytes.begin(), h.key.bytes.end());
  v.insert(v.end(), h.sha256.begin(), h.sha256.end());
  PutU32(&v, h.raw_len);
  PutU32(&v, h.stored_len);
  PutU32(&v, XXH32(v.data(), v.size(), 0));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

Result<RecordHeader> DecodeRecordHeader(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kRecordHeaderBytes) return Corruption("record header is truncated");
  const std::uint8_t* p = bytes.data();
  if (GetU32(p) != kRecordMagic) return Corruption("bad record magic");
  if (GetU32(p + 64) != XXH32(p, 64, 0)) return Corruption("record header checksum mismatch");
  if (p[4] != kPackFormatVersion) return Corruption("unsupported record format version");
  if (p[5] < 1 || p[5] > 3) return Corruption("unknown record type");
  if (p[6] > 1) return Corruption("unknown codec");
  RecordHeader h;
  h.type = static_cast<RecordType>(p[5]);
  h.codec = static_cast<Codec>(p[6]);
  std::memcpy(h.key.bytes.data(), p + 8, 16);
  std::memcpy(h.sha256.data(), p + 24, 32);
  h.raw_len = GetU32(p + 56);
  h.stored_len = GetU32(p + 60);
  return h;
}

namespace {
void PutId(std::vector<std::uint8_t>* v, const std::string& id) {
  PutU16(v, static_cast<std::uint16_t>(id.size()));
  v->insert(v->end(), id.begin(), id.end());
}
std::string GetId(ByteReader* r) {
  std::uint16_t n = r->U16();
  auto s = r->Bytes(n);
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}
}  // namespace

std::vector<std::uint8_t> EncodeManifest(const BlobManifest& m) {
  std::vector<std::uint8_t> v;
  v.reserve(96 + m.id.size() + m.extents.size() * 20);
  PutU64(&v, m.seq);
  PutId(&v, m.id);
  PutU64(&v, m.size);
  PutU64(&v, static_cast<std::uint64_t>(m.created_unix_s));
  v.insert(v.end(), m.sha256.begin(), m.sha256.end());
  AppendChunkerParams(m.chunker, &v);
  PutU32(&v, static_cast<std::uint32_t>(m.extents.size()));
  for (const ChunkExtent& e : m.extents) {
    PutU32(&v, e.length);
    v.insert(v.end(), e.key.bytes.begin(), e.key.bytes.end());
  }
  return v;
}

Result<BlobManifest> DecodeManifest(std::span<const std::uint8_t> bytes) {
  ByteReader r(bytes);
  BlobManifest m;
  m.seq = r.U64();
  m.id = GetId(&r);
  m.size = r.U64();
  m.created_unix_s = static_cast<std::int64_t>(r.U64());
  auto sha = r.Bytes(32);
  if (!sha.empty()) std::memcpy(m.sha256.data(), sha.data(), 32);
  auto params = r.Bytes(13);
  std::uint32_t count = r.U32();
  if (r.failed() || count > r.remaining() / 20) return Corruption("blob manifest is truncated");
  LB_ASSIGN_OR_RETURN(m.chunker, DecodeChunkerParams(params));
  m.extents.resize(count);
  std::uint64_t offset = 0;
  for (ChunkExtent& e : m.extents) {
    e.blob_offset = offset;
    e.length = r.U32();
    std::memcpy(e.key.bytes.data(), r.Bytes(16).data(), 16);
    offset += e.length;
  }
  if (r.remaining() != 0 || offset != m.size) return Corruption("blob manifest is inconsistent");
  return m;
}

std::vector<std::uint8_t> EncodeTombstone(const Tombstone& t) {
  std::vector<std::uint8_t> v;
  PutU64(&v, t.seq);
  PutId(&v, t.id);
  PutU64(&v, static_cast<std::uint64_t>(t.removed_unix_s));
  return v;
}

Result<Tombstone> DecodeTombstone(std::span<const std::uint8_t> bytes) {
  ByteReader r(bytes);
  Tombstone t;
  t.seq = r.U64();
  t.id = GetId(&r);
  t.removed_unix_s = static_cast<std::int64_t>(r.U64());
  if (r.failed() || r.remaining() != 0) return Corruption("tombstone is malformed");
  return t;
}

}  // namespace lazyblob
