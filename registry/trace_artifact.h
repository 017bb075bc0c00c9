// Access records in a registry (registry/FORMAT.md "Access records"): blob ID's record is
// an OCI artifact (artifactType application/vnd.lazyblob.trace.v1) whose one layer is the
// record in its frozen encoding (core/access_trace.h) and whose `subject` is the blob's
// manifest, tagged `lbt-` + the 64 hex digits of SHA-256(ID). Publishing merges: the
// record already in the registry is the base of AccessTrace::Merge and the new one is
// merged into it, so every node's start adds to the record and none erases another's.
//
// Thread-safety: free functions; one call at a time per client (as for pushes).
#ifndef LAZYBLOB_REGISTRY_TRACE_ARTIFACT_H_
#define LAZYBLOB_REGISTRY_TRACE_ARTIFACT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/access_trace.h"
#include "core/status.h"
#include "registry/registry_client.h"

namespace lazyblob {

inline constexpr std::string_view kTraceArtifactType = "application/vnd.lazyblob.trace.v1";

// The tag of blob `blob_id`'s record.
std::string TraceTagFor(std::string_view blob_id);

struct PublishedTrace {
  std::string tag;
  std::string manifest_digest;
  std::uint64_t chunks = 0;  // entries of the published (merged) record
  bool merged = false;       // the registry held a record that was merged with ours
};

// Publishes `record` for `blob_id`, whose manifest is `subject_digest` (it must exist).
Result<PublishedTrace> PublishTrace(RegistryClient& client, std::string_view blob_id,
                                    std::string_view subject_digest, const AccessTrace& record);

// The registry's record of `blob_id`; kNotFound when it has none.
Result<AccessTrace> FetchTrace(RegistryClient& client, std::string_view blob_id);

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_TRACE_ARTIFACT_H_
