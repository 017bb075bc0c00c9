// BlobFetcher: reads published lazyblob blobs from a registry. Two steps, both callable
// from daemon workers:
//  - Resolve(id): the blob's manifest (by its tag) and chunk map, checked against each
//    other: everything needed to serve the blob (size, chunker, SHA-256, chunk keys and
//    their places in the bundle blobs).
//  - Plan() + Fetch(): chunks grouped into Range GETs (neighbours in one bundle merged up
//    to a size limit), each chunk verified (decoded, XXH3-128 == key, SHA-256 == the
//    map's) before it is handed on. A chunk that fails is never handed on.
//
// Thread-safety: thread-safe; no state besides the borrowed client, which must outlive
// the fetcher. Resolved maps are immutable and shared.
#ifndef LAZYBLOB_REGISTRY_BLOB_FETCHER_H_
#define LAZYBLOB_REGISTRY_BLOB_FETCHER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "registry/registry_client.h"
#include "registry/remote_format.h"
#include "store/chunk_store.h"

namespace lazyblob {

struct RemoteBlob {
  RemoteBlobMap map;
  std::string tag;
  std::string manifest_digest;
  std::string chunk_map_digest;
};

struct CoalesceOptions {
  // One Range GET covers at most this many bytes (a single larger chunk still gets one).
  std::uint64_t max_request_bytes = 4u << 20;
  // Chunks of one bundle at most this far apart share a request; the gap's bytes are
  // downloaded and dropped.
  std::uint64_t max_gap_bytes = 64u << 10;

  Status Validate() const;
};

// One Range GET of bundle `bundle`: bytes [offset, offset + length), holding `chunks`
// (indexes into RemoteBlobMap::chunks, by offset).
struct RangeRequest {
  std::uint32_t bundle = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::vector<std::size_t> chunks;
};

struct FetchStats {
  std::uint64_t requests = 0;
  std::uint64_t bytes = 0;          // bytes received for chunks and gaps
  std::uint64_t chunks = 0;         // chunks verified and handed on
  std::uint64_t range_ignored = 0;  // 200 answers to Range requests
};

// Called once per verified chunk: its index in RemoteBlobMap::chunks, the chunk as stored
// (to insert it into a ChunkStore) and its decoded bytes (valid during the call only).
using FetchedChunkFn =
    std::function<Status(std::size_t index, StoredChunk chunk, std::span<const std::byte> raw)>;

// Called for a chunk that failed verification (kCorruption naming it), when Fetch was
// asked to go on past such chunks.
using RejectedChunkFn = std::function<void(std::size_t index, const Status& why)>;

class BlobFetcher {
 public:
  explicit BlobFetcher(RegistryClient* client) : client_(client) {}

  // kNotFound when the registry has no blob with this id; kMalformed when its manifest or
  // chunk map is not a valid lazyblob one (or they disagree); kCorruption when the chunk
  // map does not match its digest.
  Result<std::shared_ptr<const RemoteBlob>> Resolve(std::string_view blob_id) const;

  // Range GETs covering `chunks` (indexes into map.chunks; duplicates and repeated keys
  // are fetched once), bundle by bundle in offset order.
  static std::vector<RangeRequest> Plan(const RemoteBlobMap& map,
                                        std::span<const std::size_t> chunks,
                                        const CoalesceOptions& options);

  // Performs one planned request and hands each verified chunk to `on_chunk`. Stops at
  // the first chunk that fails verification (kCorruption naming the chunk and the
  // bundle) or the first error `on_chunk` returns. `stats` (optional) is added to.
  // With `on_rejected` set, a chunk that fails verification is handed to it instead and
  // the fetch goes on with the next chunk (so one bad byte costs one chunk, not the whole
  // request); the first such kCorruption is returned at the end.
  Status Fetch(const RemoteBlob& blob, const RangeRequest& request, const FetchedChunkFn& on_chunk,
               FetchStats* stats = nullptr, const RejectedChunkFn& on_rejected = {}) const;

  RegistryClient* client() const { return client_; }

 private:
  RegistryClient* const client_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_BLOB_FETCHER_H_
