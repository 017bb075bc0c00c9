// PullBlob and ListRemoteBlobs: bring a published blob into a local ChunkStore
// (lazyblob pull), fetching only the chunks the store lacks with coalesced Range GETs,
// and list what a repository holds (lazyblob ls --registry).
//
// Thread-safety: PullBlob runs its own fetch threads; callers may run several at once on
// one client but a store admits one writer operation at a time.
#ifndef LAZYBLOB_REGISTRY_PULLER_H_
#define LAZYBLOB_REGISTRY_PULLER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "registry/blob_fetcher.h"
#include "registry/registry_client.h"
#include "store/chunk_store.h"

namespace lazyblob {

struct PullOptions {
  CoalesceOptions coalesce{8u << 20, 1u << 20};
  int parallel_requests = 4;  // Range GETs in flight at once

  Status Validate() const;
};

struct PullResult {
  std::string id;
  std::string manifest_digest;
  std::uint64_t size = 0;
  std::uint64_t chunks = 0;          // extents in the blob's map
  std::uint64_t fetched_chunks = 0;  // chunks fetched (the store lacked them)
  std::uint64_t fetched_bytes = 0;   // bytes received for them (gaps included)
  std::uint64_t requests = 0;        // Range GETs
  std::uint64_t range_ignored = 0;   // of which the server answered 200 (whole bundle)
  std::uint64_t stored_bytes = 0;    // pack bytes written
  bool already_present = false;      // the store had the blob: nothing fetched
};

// (raw bytes of the fetched chunks so far, raw bytes to fetch); from any thread, one call
// at a time.
using PullProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// `store` must be writable. All or nothing: on any failure (the blob is unknown, a
// manifest or map is malformed, a chunk fails its hash, the registry goes away) the
// store is left as it was (ChunkStore::ImportChunkedBlob).
Result<PullResult> PullBlob(RegistryClient& client, ChunkStore& store, std::string_view id,
                            const PullOptions& options, const PullProgress& progress = {});

struct RemoteBlobSummary {
  std::string id;
  std::string tag;
  std::string manifest_digest;
  std::uint64_t size = 0;
  std::uint64_t chunks = 0;
  std::string sha256;   // hex, of the whole blob
  std::string created;  // RFC 3339, when it was imported into the pushing store
};

// The lazyblob blobs in the repository (tags made by TagForBlobId whose manifests are
// lazyblob artifacts), sorted by id. Other tags are skipped; `skipped` (optional) counts
// tags that looked like lazyblob's but whose manifests are not.
Result<std::vector<RemoteBlobSummary>> ListRemoteBlobs(RegistryClient& client,
                                                       std::uint64_t* skipped = nullptr);

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_PULLER_H_
