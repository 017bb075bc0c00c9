#include "registry/registry_traces.h"

#include "core/log.h"
#include "registry/trace_artifact.h"

namespace lazyblob {

Result<AccessTrace> RegistryTraces::Load(std::string_view blob_id) {
  Result<AccessTrace> local = local_->Load(blob_id);
  if (local.status().code() != StatusCode::kNotFound) return local;
  const std::string id(blob_id);
  {
    MutexLock lock(&mu_);
    auto it = absent_until_.find(id);
    if (it != absent_until_.end() && Clock::now() < it->second) return local;
  }
  Result<AccessTrace> remote = FetchTrace(*client_, blob_id);
  if (!remote.ok()) {
    if (remote.status().code() != StatusCode::kNotFound) {
      Log(LogLevel::kWarn,
          "blob '" + id + "': access record not fetched: " + remote.status().ToString());
    }
    MutexLock lock(&mu_);
    absent_until_[id] = Clock::now() + retry_after_;
    return local;  // kNotFound: nothing to replay
  }
  if (Status s = local_->Save(blob_id, *remote); !s.ok()) {
    Log(LogLevel::kWarn, "blob '" + id + "': access record not kept: " + s.ToString());
  }
  Log(LogLevel::kInfo, "blob '" + id + "': access record of " +
                           std::to_string(remote->blocks.size()) + " chunks from the registry");
  return remote;
}

}  // namespace lazyblob
