#include "registry/blob_fetcher.h"

#include <algorithm>
#include <tuple>
#include <unordered_set>

#include "store/hashing.h"

namespace lazyblob {
namespace {

constexpr std::uint64_t kMaxChunkMapBytes = 256u << 20;

}  // namespace

Status CoalesceOptions::Validate() const {
  if (max_request_bytes == 0) return InvalidArgument("max_request_bytes must be positive");
  return Status::Ok();
}

Result<std::shared_ptr<const RemoteBlob>> BlobFetcher::Resolve(std::string_view blob_id) const {
  LB_RETURN_IF_ERROR(ChunkStore::ValidateBlobId(blob_id));
  auto blob = std::make_shared<RemoteBlob>();
  blob->tag = TagForBlobId(blob_id);
  const std::string where = "blob '" + std::string(blob_id) + "' in " + client_->ref().ToString();
  auto fetched = client_->GetManifest(blob->tag);
  if (!fetched.ok()) {
    if (fetched.status().code() == StatusCode::kNotFound) {
      return NotFound("no " + where + " (tag " + blob->tag + ")");
    }
    return fetched.status();
  }
  blob->manifest_digest = fetched->digest;
  auto manifest = DecodeArtifactManifest(fetched->bytes);
  if (!manifest.ok()) return manifest.status().WithContext(where);
  if (manifest->blob_id != blob_id) {
    return Malformed(where + ": tag " + blob->tag + " holds blob '" + manifest->blob_id + "'");
  }
  blob->chunk_map_digest = manifest->chunk_map.digest;
  if (manifest->chunk_map.size > kMaxChunkMapBytes) {
    return Malformed(where + ": chunk map of " + std::to_string(manifest->chunk_map.size) +
                     " bytes is too large");
  }
  LB_ASSIGN_OR_RETURN(auto bytes,
                      client_->GetBlob(manifest->chunk_map.digest, manifest->chunk_map.size));
  auto map = DecodeChunkMap(bytes);
  if (!map.ok()) return map.status().WithContext(where);
  blob->map = std::move(*map);
  const RemoteBlobMap& m = blob->map;
  bool same_bundles = m.bundles.size() == manifest->bundles.size();
  for (std::size_t i = 0; same_bundles && i < m.bundles.size(); ++i) {
    same_bundles = m.bundles[i].digest == manifest->bundles[i].digest &&
                   m.bundles[i].size == manifest->bundles[i].size;
  }
  if (m.info.id != blob_id || m.info.size != manifest->blob_size || !same_bundles) {
    return Malformed(where + ": the manifest and its chunk map disagree");
  }
  return std::shared_ptr<const RemoteBlob>(std::move(blob));
}

std::vector<RangeRequest> BlobFetcher::Plan(const RemoteBlobMap& map,
                                            std::span<const std::size_t> chunks,
                                            const CoalesceOptions& options) {
  std::vector<std::size_t> order;
  std::unordered_set<ChunkKey, ChunkKeyHash> keys;
  for (std::size_t i : chunks) {
    if (i < map.chunks.size() && keys.insert(map.chunks[i].key).second) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const RemoteChunk &x = map.chunks[a], &y = map.chunks[b];
    return std::tie(x.bundle, x.offset) < std::tie(y.bundle, y.offset);
  });
  std::vector<RangeRequest> plan;
  for (std::size_t i : order) {
    const RemoteChunk& c = map.chunks[i];
    if (!plan.empty()) {
      RangeRequest& r = plan.back();
      const std::uint64_t end = r.offset + r.length;
      const std::uint64_t new_end = std::max(end, c.offset + c.stored_len);
      if (r.bundle == c.bundle && c.offset >= r.offset && c.offset <= end + options.max_gap_bytes &&
          new_end - r.offset <= options.max_request_bytes) {
        r.length = new_end - r.offset;
        r.chunks.push_back(i);
        continue;
      }
    }
    plan.push_back(RangeRequest{c.bundle, c.offset, c.stored_len, {i}});
  }
  return plan;
}

Status BlobFetcher::Fetch(const RemoteBlob& blob, const RangeRequest& request,
                          const FetchedChunkFn& on_chunk, FetchStats* stats,
                          const RejectedChunkFn& on_rejected) const {
  const RemoteBlobMap& m = blob.map;
  if (request.bundle >= m.bundles.size()) return InvalidArgument("Fetch: bad bundle index");
  const std::string& digest = m.bundles[request.bundle].digest;
  LB_ASSIGN_OR_RETURN(BlobRange range,
                      client_->GetBlobRange(digest, request.offset, request.length));
  if (stats != nullptr) {
    ++stats->requests;
    stats->bytes += range.bytes.size();
    if (range.range_ignored) ++stats->range_ignored;
  }
  thread_local std::vector<std::byte> raw;
  Status first_rejected;
  for (std::size_t i : request.chunks) {
    const RemoteChunk& c = m.chunks[i];
    if (c.bundle != request.bundle || c.offset < request.offset ||
        c.offset + c.stored_len > request.offset + request.length) {
      return InvalidArgument("Fetch: chunk " + std::to_string(i) + " is not in the request");
    }
    StoredChunk s;
    s.key = c.key;
    s.sha256 = c.sha256;
    s.codec = c.codec;
    s.raw_len = c.raw_len;
    const auto* begin = range.bytes.data() + (c.offset - request.offset);
    s.payload.assign(begin, begin + c.stored_len);
    if (Status v = ChunkStore::VerifyStoredChunk(s, &raw); !v.ok()) {
      Status refused = Corruption("blob '" + m.info.id + "': " + v.message() + " (bundle " +
                                  digest + " at offset " + std::to_string(c.offset) + "); refused");
      if (!on_rejected) return refused;
      on_rejected(i, refused);
      if (first_rejected.ok()) first_rejected = refused;
      continue;
    }
    LB_RETURN_IF_ERROR(on_chunk(i, std::move(s), raw));
    if (stats != nullptr) ++stats->chunks;
  }
  return first_rejected;
}

}  // namespace lazyblob
