#include "registry/remote_format.h"

#include <openssl/evp.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/aligned_buffer.h"
#include "store/chunker.h"
#include "store/hashing.h"
#include "store/pack_format.h"

namespace lazyblob {
namespace {

constexpr std::uint32_t kChunkMapMagic = 0x4D52424C;  // "LBRM" on the wire

constexpr const char* kAnnId = "io.lazyblob.blob.id";
constexpr const char* kAnnSize = "io.lazyblob.blob.size";
constexpr const char* kAnnChunks = "io.lazyblob.blob.chunks";
constexpr const char* kAnnSha = "io.lazyblob.blob.sha256";
constexpr const char* kAnnCreated = "org.opencontainers.image.created";

Status Bad(std::string why) { return Malformed("chunk map: " + std::move(why)); }

std::string Rfc3339(std::int64_t unix_s) {
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json Descriptor(std::string_view media_type, const RemoteBundle& d) {
  return {{"mediaType", media_type}, {"digest", d.digest}, {"size", d.size}};
}

Result<RemoteBundle> ParseDescriptor(const nlohmann::json& j, std::string_view want_type) {
  if (!j.is_object() || !j.contains("mediaType") || !j["mediaType"].is_string() ||
      !j.contains("digest") || !j["digest"].is_string() || !j.contains("size") ||
      !j["size"].is_number_unsigned()) {
    return Malformed("manifest: a descriptor lacks mediaType, digest or size");
  }
  if (j["mediaType"].get<std::string>() != want_type) {
    return Malformed("manifest: descriptor has media type '" + j["mediaType"].get<std::string>() +
                     "', expected '" + std::string(want_type) + "'");
  }
  RemoteBundle d{j["digest"].get<std::string>(), j["size"].get<std::uint64_t>()};
  if (!IsSha256Digest(d.digest)) return Malformed("manifest: bad digest '" + d.digest + "'");
  return d;
}

}  // namespace

std::string DigestOf(std::span<const std::uint8_t> bytes) {
  const Sha256Digest d = Sha256Of(std::as_bytes(bytes));
  return "sha256:" + HexOf(d);
}

bool IsSha256Digest(std::string_view digest) {
  if (digest.size() != 71 || !digest.starts_with("sha256:")) return false;
  for (char c : digest.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::vector<ChunkExtent> RemoteBlobMap::Extents() const {
  std::vector<ChunkExtent> out;
  out.reserve(chunks.size());
  std::uint64_t offset = 0;
  for (const RemoteChunk& c : chunks) {
    out.push_back({offset, c.raw_len, c.key});
    offset += c.raw_len;
  }
  return out;
}

std::shared_ptr<const BlobMap> RemoteBlobMap::ToBlobMap() const {
  auto map = std::make_shared<BlobMap>();
  map->id = info.id;
  map->size = info.size;
  map->extents = Extents();
  return map;
}

std::vector<std::uint8_t> EncodeChunkMap(const RemoteBlobMap& m) {
  std::vector<std::uint8_t> v;
  v.reserve(kChunkMapHeaderBytes + m.info.id.size() + m.bundles.size() * kChunkMapBundleBytes +
            m.chunks.size() * kChunkMapEntryBytes);
  PutU32(&v, kChunkMapMagic);
  PutU32(&v, kChunkMapVersion);
  PutU64(&v, m.info.size);
  v.insert(v.end(), m.info.sha256.begin(), m.info.sha256.end());
  AppendChunkerParams(m.info.chunker, &v);
  v.insert(v.end(), 3, 0);
  PutU64(&v, static_cast<std::uint64_t>(m.info.created_unix_s));
  PutU32(&v, static_cast<std::uint32_t>(m.chunks.size()));
  PutU32(&v, static_cast<std::uint32_t>(m.bundles.size()));
  PutU16(&v, static_cast<std::uint16_t>(m.info.id.size()));
  PutU16(&v, 0);
  v.insert(v.end(), m.info.id.begin(), m.info.id.end());
  for (const RemoteBundle& b : m.bundles) {
    // Digests are stored as their 32 raw bytes.
    for (std::size_t i = 0; i < 32; ++i) {
      const auto hex = [&](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
      v.push_back(
          static_cast<std::uint8_t>(hex(b.digest[7 + 2 * i]) << 4 | hex(b.digest[8 + 2 * i])));
    }
    PutU64(&v, b.size);
  }
  for (const RemoteChunk& c : m.chunks) {
    PutU32(&v, c.raw_len);
    PutU32(&v, c.stored_len);
    v.insert(v.end(), c.key.bytes.begin(), c.key.bytes.end());
    v.insert(v.end(), c.sha256.begin(), c.sha256.end());
    v.push_back(static_cast<std::uint8_t>(c.codec));
    v.insert(v.end(), 3, 0);
    PutU32(&v, c.bundle);
    PutU64(&v, c.offset);
  }
  return v;
}

Result<RemoteBlobMap> DecodeChunkMap(std::span<const std::uint8_t> bytes) {
  ByteReader r(bytes);
  if (r.U32() != kChunkMapMagic) return Bad("bad magic (not a lazyblob chunk map)");
  if (const std::uint32_t v = r.U32(); v != kChunkMapVersion) {
    return r.failed() ? Bad("truncated header") : Bad("unsupported version " + std::to_string(v));
  }
  RemoteBlobMap m;
  m.info.size = r.U64();
  auto sha = r.Bytes(32);
  auto params = r.Bytes(13);
  auto zero1 = r.Bytes(3);
  m.info.created_unix_s = static_cast<std::int64_t>(r.U64());
  const std::uint32_t n = r.U32();
  const std::uint32_t b = r.U32();
  const std::uint16_t id_len = r.U16();
  const std::uint16_t zero2 = r.U16();
  auto id = r.Bytes(id_len);
  if (r.failed()) return Bad("truncated header");
  if (zero1[0] != 0 || zero1[1] != 0 || zero1[2] != 0 || zero2 != 0) {
    return Bad("reserved header bytes are not zero");
  }
  std::memcpy(m.info.sha256.data(), sha.data(), 32);
  auto chunker = DecodeChunkerParams(params);
  if (!chunker.ok()) return Bad("bad chunker parameters");
  m.info.chunker = *chunker;
  m.info.id.assign(reinterpret_cast<const char*>(id.data()), id.size());
  if (!ChunkStore::ValidateBlobId(m.info.id).ok()) return Bad("bad blob id");
  if (r.remaining() !=
      std::uint64_t{b} * kChunkMapBundleBytes + std::uint64_t{n} * kChunkMapEntryBytes) {
    return Bad("length does not match its bundle and chunk counts");
  }
  m.bundles.resize(b);
  for (RemoteBundle& bundle : m.bundles) {
    bundle.digest = "sha256:" + HexOf(r.Bytes(32));
    bundle.size = r.U64();
  }
  m.chunks.resize(n);
  const std::uint32_t max_len = Chunker(m.info.chunker).MaxChunkBytes();
  std::uint64_t total = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    RemoteChunk& c = m.chunks[i];
    c.raw_len = r.U32();
    c.stored_len = r.U32();
    std::memcpy(c.key.bytes.data(), r.Bytes(16).data(), 16);
    std::memcpy(c.sha256.data(), r.Bytes(32).data(), 32);
    const std::uint8_t codec = r.U8();
    auto zero = r.Bytes(3);
    c.bundle = r.U32();
    c.offset = r.U64();
    const std::string at = "chunk " + std::to_string(i) + ": ";
    if (codec > 1) return Bad(at + "unknown codec " + std::to_string(codec));
    if (zero[0] != 0 || zero[1] != 0 || zero[2] != 0) return Bad(at + "reserved bytes not zero");
    c.codec = static_cast<Codec>(codec);
    const bool last = i + 1 == n;
    if (c.raw_len == 0 || c.raw_len > max_len || (!last && c.raw_len % kBlockSize != 0)) {
      return Bad(at + "bad length " + std::to_string(c.raw_len));
    }
    if (c.stored_len == 0 || (c.codec == Codec::kRaw && c.stored_len != c.raw_len)) {
      return Bad(at + "bad stored length");
    }
    if (c.bundle >= b || c.offset > m.bundles[c.bundle].size ||
        m.bundles[c.bundle].size - c.offset < c.stored_len) {
      return Bad(at + "lies outside its bundle");
    }
    total += c.raw_len;
  }
  if (n == 0 || total != m.info.size) return Bad("chunk lengths do not sum to the blob size");
  m.info.chunk_count = n;
  return m;
}

std::string EncodeArtifactManifest(const RemoteBlobMap& map, const RemoteBundle& map_descriptor) {
  nlohmann::json layers = nlohmann::json::array();
  layers.push_back(Descriptor(kChunkMapMediaType, map_descriptor));
  for (const RemoteBundle& b : map.bundles) layers.push_back(Descriptor(kBundleMediaType, b));
  nlohmann::json doc = {
      {"schemaVersion", 2},
      {"mediaType", kManifestMediaType},
      {"artifactType", kArtifactType},
      {"config", Descriptor(kEmptyConfigMediaType, {std::string(kEmptyConfigDigest), 2})},
      {"layers", layers},
      {"annotations",
       {{kAnnId, map.info.id},
        {kAnnSize, std::to_string(map.info.size)},
        {kAnnChunks, std::to_string(map.chunks.size())},
        {kAnnSha, HexOf(map.info.sha256)},
        {kAnnCreated, Rfc3339(map.info.created_unix_s)}}}};
  return doc.dump();
}

Result<ArtifactManifest> DecodeArtifactManifest(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Malformed("manifest is not a JSON object");
  auto str = [&](const nlohmann::json& o, const char* key) -> std::string {
    return o.is_object() && o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : "";
  };
  if (!j.contains("schemaVersion") || j["schemaVersion"] != 2) {
    return Malformed("manifest: schemaVersion is not 2");
  }
  if (str(j, "artifactType") != kArtifactType) {
    return Malformed("manifest: artifactType is '" + str(j, "artifactType") + "', not '" +
                     std::string(kArtifactType) + "' (not a lazyblob blob)");
  }
  if (!j.contains("layers") || !j["layers"].is_array() || j["layers"].empty()) {
    return Malformed("manifest: no layers");
  }
  ArtifactManifest m;
  LB_ASSIGN_OR_RETURN(m.chunk_map, ParseDescriptor(j["layers"][0], kChunkMapMediaType));
  for (std::size_t i = 1; i < j["layers"].size(); ++i) {
    LB_ASSIGN_OR_RETURN(RemoteBundle b, ParseDescriptor(j["layers"][i], kBundleMediaType));
    m.bundles.push_back(std::move(b));
  }
  const nlohmann::json& ann = j.contains("annotations") ? j["annotations"] : nlohmann::json();
  m.blob_id = str(ann, kAnnId);
  if (m.blob_id.empty())
    return Malformed("manifest: annotation " + std::string(kAnnId) + " is missing");
  m.blob_sha256 = str(ann, kAnnSha);
  m.created = str(ann, kAnnCreated);
  try {
    m.blob_size = std::stoull(str(ann, kAnnSize));
    m.chunk_count = std::stoull(str(ann, kAnnChunks));
  } catch (const std::exception&) {
    return Malformed("manifest: size or chunk annotations are not numbers");
  }
  return m;
}

}  // namespace lazyblob
