#include "registry/pusher.h"

#include <unordered_map>
#include <unordered_set>

#include "registry/blob_fetcher.h"
#include "registry/registry_ref.h"
#include "registry/remote_format.h"
#include "store/hashing.h"

namespace lazyblob {
namespace {

// Where the repository (or this push) already has a chunk.
struct KnownChunk {
  RemoteBundle bundle;
  std::uint64_t offset = 0;
  std::uint32_t stored_len = 0;
  Codec codec = Codec::kRaw;
  Sha256Digest sha256{};
  std::uint32_t raw_len = 0;
};
using KnownChunks = std::unordered_map<ChunkKey, KnownChunk, ChunkKeyHash>;

void Remember(const RemoteBlobMap& map, KnownChunks* known) {
  for (const RemoteChunk& c : map.chunks) {
    known->try_emplace(c.key, KnownChunk{map.bundles[c.bundle], c.offset, c.stored_len, c.codec,
                                         c.sha256, c.raw_len});
  }
}

// The chunk maps of every lazyblob blob in the repository; `remote` gets id -> map.
// Tags that look like lazyblob's but hold something else are skipped.
Status LoadRepository(RegistryClient& client, KnownChunks* known,
                      std::unordered_map<std::string, RemoteBlobMap>* remote) {
  LB_ASSIGN_OR_RETURN(std::vector<std::string> tags, client.ListTags());
  BlobFetcher fetcher(&client);
  for (const std::string& tag : tags) {
    if (!IsBlobTag(tag)) continue;
    Result<std::string> id = BlobIdForTag(tag);
    if (!id.ok() && id.status().code() == StatusCode::kNotFound) {  // lbh-: id in the manifest
      LB_ASSIGN_OR_RETURN(FetchedManifest manifest, client.GetManifest(tag));
      auto decoded = DecodeArtifactManifest(manifest.bytes);
      if (!decoded.ok() || TagForBlobId(decoded->blob_id) != tag) continue;
      id = decoded->blob_id;
    }
    if (!id.ok()) continue;
    auto blob = fetcher.Resolve(*id);
    if (!blob.ok() && blob.status().code() == StatusCode::kMalformed) continue;
    if (!blob.ok()) {
      return blob.status().WithContext("reading what " + client.ref().ToString() + " holds");
    }
    Remember((*blob)->map, known);
    remote->emplace((*blob)->map.info.id, (*blob)->map);
  }
  return Status::Ok();
}

// Builds one blob's bundles and map while its chunks are walked in order.
class BlobPublisher {
 public:
  BlobPublisher(RegistryClient& client, ChunkStore& store, const PushOptions& options,
                KnownChunks& known, PushBlobResult& result)
      : client_(client), store_(store), options_(options), known_(known), result_(result) {}

  Status Add(const ChunkExtent& e) {
    if (auto it = seen_.find(e.key); it != seen_.end()) {
      map_.chunks.push_back(it->second);
      return Status::Ok();
    }
    if (auto it = known_.find(e.key); it != known_.end()) {
      const KnownChunk& k = it->second;
      if (k.raw_len != e.length) {
        return Corruption("chunk " + e.key.ToHex() + " has length " + std::to_string(k.raw_len) +
                          " in the registry and " + std::to_string(e.length) + " locally");
      }
      ++result_.skipped_chunks;
      result_.skipped_bytes += k.stored_len;
      return Use(e.key, RemoteChunk{e.key, k.sha256, k.codec, k.raw_len, k.stored_len,
                                    BundleIndex(k.bundle), k.offset});
    }
    LB_ASSIGN_OR_RETURN(StoredChunk c, store_.ReadStoredChunk(e.key));
    if (open_.empty() && open_chunks_.empty()) open_.reserve(options_.bundle_target_bytes);
    RemoteChunk rc{
        c.key, c.sha256,    c.codec, c.raw_len, static_cast<std::uint32_t>(c.payload.size()),
        0,     open_.size()};
    open_.insert(open_.end(), c.payload.begin(), c.payload.end());
    open_chunks_.push_back(map_.chunks.size());
    ++result_.uploaded_chunks;
    result_.uploaded_bytes += c.payload.size();
    LB_RETURN_IF_ERROR(Use(e.key, rc));
    if (open_.size() >= options_.bundle_target_bytes) LB_RETURN_IF_ERROR(Flush());
    return Status::Ok();
  }

  // Uploads the open bundle and points its chunks at it.
  Status Flush() {
    if (open_chunks_.empty()) return Status::Ok();
    RemoteBundle b{DigestOf(open_), open_.size()};
    LB_ASSIGN_OR_RETURN(bool present, client_.HasBlob(b.digest));
    if (!present) LB_RETURN_IF_ERROR(client_.PutBlob(open_, b.digest));
    ++result_.bundles_uploaded;
    const std::uint32_t index = BundleIndex(b);
    for (std::size_t i : open_chunks_) {
      RemoteChunk& c = map_.chunks[i];
      c.bundle = index;
      known_.try_emplace(c.key,
                         KnownChunk{b, c.offset, c.stored_len, c.codec, c.sha256, c.raw_len});
    }
    open_.clear();
    open_chunks_.clear();
    return Status::Ok();
  }

  RemoteBlobMap& map() { return map_; }

 private:
  Status Use(const ChunkKey& key, const RemoteChunk& c) {
    seen_.emplace(key, c);
    map_.chunks.push_back(c);
    return Status::Ok();
  }
  std::uint32_t BundleIndex(const RemoteBundle& b) {
    auto [it, inserted] = bundle_index_.try_emplace(b.digest, map_.bundles.size());
    if (inserted) map_.bundles.push_back(b);
    return static_cast<std::uint32_t>(it->second);
  }

  RegistryClient& client_;
  ChunkStore& store_;
  const PushOptions& options_;
  KnownChunks& known_;
  PushBlobResult& result_;
  RemoteBlobMap map_;
  std::unordered_map<ChunkKey, RemoteChunk, ChunkKeyHash> seen_;  // this blob's chunks so far
  std::unordered_map<std::string, std::size_t> bundle_index_;
  std::vector<std::uint8_t> open_;        // the bundle being filled
  std::vector<std::size_t> open_chunks_;  // map_.chunks entries that live in it
};

// Uploads the map and the manifest; the tag goes last.
Status Publish(RegistryClient& client, RemoteBlobMap& map, PushBlobResult& r) {
  // Repeated keys got the open bundle's index 0 before the flush fixed the first copy.
  std::unordered_map<ChunkKey, RemoteChunk, ChunkKeyHash> final_place;
  for (const RemoteChunk& c : map.chunks) final_place.try_emplace(c.key, c);
  for (RemoteChunk& c : map.chunks) c = final_place[c.key];
  const std::vector<std::uint8_t> bytes = EncodeChunkMap(map);
  const RemoteBundle desc{DigestOf(bytes), bytes.size()};
  r.map_bytes = bytes.size();
  LB_ASSIGN_OR_RETURN(bool have_map, client.HasBlob(desc.digest));
  if (!have_map) LB_RETURN_IF_ERROR(client.PutBlob(bytes, desc.digest));
  LB_ASSIGN_OR_RETURN(bool have_config, client.HasBlob(kEmptyConfigDigest));
  if (!have_config) {
    LB_RETURN_IF_ERROR(client.PutBlob(
        std::span(reinterpret_cast<const std::uint8_t*>(kEmptyConfig.data()), kEmptyConfig.size()),
        kEmptyConfigDigest));
  }
  const std::string manifest = EncodeArtifactManifest(map, desc);
  LB_ASSIGN_OR_RETURN(r.manifest_digest, client.PutManifest(r.tag, kManifestMediaType, manifest));
  return Status::Ok();
}

}  // namespace

Result<PushResult> PushBlobs(RegistryClient& client, ChunkStore& store,
                             const std::vector<std::string>& ids, const PushOptions& options,
                             const PushProgress& progress) {
  std::vector<std::pair<BlobInfo, std::shared_ptr<const BlobMap>>> blobs;
  std::uint64_t total = 0;
  for (const std::string& id : ids) {
    LB_ASSIGN_OR_RETURN(BlobInfo info, store.GetBlob(id));
    LB_ASSIGN_OR_RETURN(OpenedBlob opened, store.OpenBlob(id));
    std::shared_ptr<const BlobMap> map = std::move(opened.map);
    total += info.size;
    blobs.emplace_back(std::move(info), std::move(map));
  }
  const std::uint64_t requests_before = client.stats().requests;
  KnownChunks known;
  std::unordered_map<std::string, RemoteBlobMap> remote;
  LB_RETURN_IF_ERROR(LoadRepository(client, &known, &remote));

  PushResult out;
  std::uint64_t done = 0;
  for (const auto& [info, map] : blobs) {
    PushBlobResult r;
    r.id = info.id;
    r.tag = TagForBlobId(info.id);
    r.size = info.size;
    r.chunks = map->extents.size();
    if (auto it = remote.find(info.id); it != remote.end()) {
      if (it->second.info.size != info.size || it->second.info.sha256 != info.sha256) {
        return AlreadyExists("blob '" + info.id + "' is already in " + client.ref().ToString() +
                             " (tag " + r.tag + ") with other content");
      }
      r.already_present = true;
      LB_ASSIGN_OR_RETURN(auto m, client.GetManifest(r.tag));
      r.manifest_digest = m.digest;
      done += info.size;
      if (progress) progress(done, total);
      out.blobs.push_back(std::move(r));
      continue;
    }
    BlobPublisher pub(client, store, options, known, r);
    pub.map().info = info;
    for (const ChunkExtent& e : map->extents) {
      LB_RETURN_IF_ERROR(pub.Add(e).WithContext("push '" + info.id + "'"));
      done += e.length;
      if (progress) progress(done, total);
    }
    LB_RETURN_IF_ERROR(pub.Flush().WithContext("push '" + info.id + "'"));
    LB_RETURN_IF_ERROR(Publish(client, pub.map(), r).WithContext("push '" + info.id + "'"));
    remote.emplace(info.id, pub.map());
    out.uploaded_bytes += r.uploaded_bytes;
    out.skipped_bytes += r.skipped_bytes;
    out.blobs.push_back(std::move(r));
  }
  out.http_requests = client.stats().requests - requests_before;
  return out;
}

}  // namespace lazyblob
