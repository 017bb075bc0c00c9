// PushBlobs: publishes blobs from a ChunkStore to a registry (lazyblob push), in the
// format of registry/FORMAT.md. Chunk bytes go up as they are stored (compressed
// records' payloads), packed into bundle blobs; only chunks the repository does not
// already hold are uploaded: the chunk maps of the lazyblob blobs already in the
// repository say which chunks it has and where.
//
// Thread-safety: one push at a time per client; the store may be used concurrently.
#ifndef LAZYBLOB_REGISTRY_PUSHER_H_
#define LAZYBLOB_REGISTRY_PUSHER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "registry/registry_client.h"
#include "store/chunk_store.h"

namespace lazyblob {

struct PushOptions {
  // A bundle blob is closed once it holds at least this many payload bytes; a blob's last
  // bundle may be smaller. 0 = one bundle per chunk. Measured in registry/FORMAT.md.
  std::uint64_t bundle_target_bytes = 8u << 20;
};

struct PushBlobResult {
  std::string id;
  std::string tag;
  std::string manifest_digest;
  std::uint64_t size = 0;
  std::uint64_t chunks = 0;           // extents in the blob's map
  std::uint64_t uploaded_chunks = 0;  // distinct chunks uploaded for this blob
  std::uint64_t uploaded_bytes = 0;   // their stored (payload) bytes
  std::uint64_t skipped_chunks = 0;   // distinct chunks the registry already held
  std::uint64_t skipped_bytes = 0;    // their stored bytes
  std::uint64_t bundles_uploaded = 0;
  std::uint64_t map_bytes = 0;   // size of the chunk map blob
  bool already_present = false;  // the tag already held this blob: nothing sent
};

struct PushResult {
  std::vector<PushBlobResult> blobs;
  std::uint64_t uploaded_bytes = 0;  // sums over blobs
  std::uint64_t skipped_bytes = 0;
  std::uint64_t http_requests = 0;  // attempts, retries included
};

// (bytes of the blobs' chunks handled, bytes in all), from the calling thread.
using PushProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// Every id must be in `store` (kNotFound before anything is sent). A tag that already
// names other content is kAlreadyExists (nothing is overwritten). Blobs are published in
// the given order; each becomes visible (its tag) only after all its blobs are uploaded.
Result<PushResult> PushBlobs(RegistryClient& client, ChunkStore& store,
                             const std::vector<std::string>& ids, const PushOptions& options,
                             const PushProgress& progress = {});

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_PUSHER_H_
