// The registry format (registry/FORMAT.md is the normative description; keep both in
// sync): media types, the chunk map blob ("LBRM") and the OCI image manifest that
// publishes one lazyblob blob.
//
// Every decoder here takes untrusted bytes (they come from a registry) and never reads
// outside the given span. Thread-safety: pure functions.
#ifndef LAZYBLOB_REGISTRY_REMOTE_FORMAT_H_
#define LAZYBLOB_REGISTRY_REMOTE_FORMAT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/chunk_source.h"
#include "core/status.h"
#include "store/chunk_store.h"

namespace lazyblob {

inline constexpr std::string_view kManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kArtifactType = "application/vnd.lazyblob.blob.v1";
inline constexpr std::string_view kEmptyConfigMediaType = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view kChunkMapMediaType = "application/vnd.lazyblob.chunkmap.v1";
inline constexpr std::string_view kBundleMediaType = "application/vnd.lazyblob.bundle.v1";
// The empty JSON object "{}" every artifact's config points at.
inline constexpr std::string_view kEmptyConfig = "{}";
inline constexpr std::string_view kEmptyConfigDigest =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

inline constexpr std::uint32_t kChunkMapVersion = 1;
inline constexpr std::size_t kChunkMapHeaderBytes = 84;
inline constexpr std::size_t kChunkMapBundleBytes = 40;
inline constexpr std::size_t kChunkMapEntryBytes = 72;

// "sha256:" + 64 lower-case hex digits.
std::string DigestOf(std::span<const std::uint8_t> bytes);
bool IsSha256Digest(std::string_view digest);

// Where one chunk of a blob lives in the registry: bytes [offset, offset + stored_len)
// of bundle blob `bundle` (an index into RemoteBlobMap::bundles).
struct RemoteChunk {
  ChunkKey key;
  Sha256Digest sha256{};
  Codec codec = Codec::kRaw;
  std::uint32_t raw_len = 0;
  std::uint32_t stored_len = 0;
  std::uint32_t bundle = 0;
  std::uint64_t offset = 0;
};

struct RemoteBundle {
  std::string digest;  // "sha256:..."
  std::uint64_t size = 0;
};

// Everything needed to serve one blob from the registry: the chunk map blob's content.
struct RemoteBlobMap {
  BlobInfo info;                      // id, size, chunker, sha256, created, chunk_count
  std::vector<RemoteBundle> bundles;  // in the manifest's layer order (after the map)
  std::vector<RemoteChunk> chunks;    // one per extent, in blob order

  // The blob's extents (offsets are the running sum of raw lengths). Extent i is chunk i:
  // BlobMap::Covering() of a READ gives the indexes to fetch.
  std::vector<ChunkExtent> Extents() const;
  // The map the request engine serves from (core/chunk_source.h).
  std::shared_ptr<const BlobMap> ToBlobMap() const;
};

// Chunk map blob bytes, little-endian, FORMAT.md "Chunk map".
std::vector<std::uint8_t> EncodeChunkMap(const RemoteBlobMap& map);
// kMalformed with the reason on any inconsistency: bad magic/version, truncation, a
// chunk outside its bundle, lengths not summing to the size, a bad chunker, a bad id.
Result<RemoteBlobMap> DecodeChunkMap(std::span<const std::uint8_t> bytes);

// One published blob's manifest, as lazyblob reads it back.
struct ArtifactManifest {
  std::string blob_id;  // annotation io.lazyblob.blob.id
  std::uint64_t blob_size = 0;
  std::uint64_t chunk_count = 0;
  std::string blob_sha256;            // hex
  std::string created;                // RFC 3339
  RemoteBundle chunk_map;             // layers[0]
  std::vector<RemoteBundle> bundles;  // layers[1..]
};

// The OCI image manifest JSON for `map` whose chunk map blob is `map_descriptor`.
std::string EncodeArtifactManifest(const RemoteBlobMap& map, const RemoteBundle& map_descriptor);
// kMalformed unless the JSON is an image manifest of artifactType kArtifactType with the
// layers and annotations above.
Result<ArtifactManifest> DecodeArtifactManifest(std::string_view json);

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_REMOTE_FORMAT_H_
