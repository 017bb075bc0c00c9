// RegistryTraces: the AccessTraceStore of a lazyblobd with a registry origin: records are
// read from the node's own (`local`, e.g. store/TraceDir) and, for a blob it has none of,
// fetched from the registry (registry/trace_artifact.h) and kept locally; so a node with an
// empty store replays what another node's start recorded and `lazyblob push` published.
// A registry that has no record for a blob (or fails) is not asked again for that blob
// for `retry_after`: OPENs of unrecorded blobs do not each cost a round trip.
//
// Thread-safety: thread-safe. `local` and `client` are borrowed and must outlive it.
#ifndef LAZYBLOB_REGISTRY_REGISTRY_TRACES_H_
#define LAZYBLOB_REGISTRY_REGISTRY_TRACES_H_

#include <chrono>
#include <string>
#include <unordered_map>

#include "core/access_trace.h"
#include "core/mutex.h"
#include "registry/registry_client.h"

namespace lazyblob {

class RegistryTraces final : public AccessTraceStore {
 public:
  RegistryTraces(AccessTraceStore* local, RegistryClient* client,
                 std::chrono::seconds retry_after = std::chrono::seconds(60))
      : local_(local), client_(client), retry_after_(retry_after) {}

  Result<AccessTrace> Load(std::string_view blob_id) override;
  // Saves locally only: publishing is `lazyblob push`'s.
  Status Save(std::string_view blob_id, const AccessTrace& trace) override {
    return local_->Save(blob_id, trace);
  }

 private:
  using Clock = std::chrono::steady_clock;

  AccessTraceStore* const local_;
  RegistryClient* const client_;
  const std::chrono::seconds retry_after_;
  Mutex mu_;
  std::unordered_map<std::string, Clock::time_point> absent_until_ LB_GUARDED_BY(mu_);
};

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_REGISTRY_TRACES_H_
