// OriginServing: what lazyblobd runs when it has a registry origin (`--origin`): the
// registry client, the origin cache it owns as writer, the OriginSource the engine serves
// from, and the origin's Prometheus metrics. Built by the worker; destroyed after the
// engine stopped (members go in reverse order: source, cache, client).
//
// Thread-safety: built and destroyed by one thread; `source` is thread-safe.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_ORIGIN_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_ORIGIN_H_

#include <memory>

#include "core/status.h"
#include "metrics/prometheus_origin_stats.h"
#include "registry/origin_cache.h"
#include "registry/origin_source.h"
#include "registry/registry_client.h"
#include "store/chunk_store.h"
#include "tools/lazyblobd_origin_config.h"

namespace lazyblob {

struct OriginServing {
  std::shared_ptr<PrometheusOriginStats> stats;
  std::unique_ptr<RegistryClient> client;
  std::unique_ptr<OriginCache> cache;
  std::unique_ptr<OriginSource> source;
};

// `local` (may be null) is the node's own store, read first; it must outlive the result.
Result<std::unique_ptr<OriginServing>> StartOrigin(const OriginConfig& config, ChunkStore* local);

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_ORIGIN_H_
