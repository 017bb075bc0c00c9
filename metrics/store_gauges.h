// StoreGauges: the chunk store's size figures, and the one writer of the nine
// lazyblob_store_* gauges. The daemon's /metrics (PrometheusEngineStats::SetStoreGauges)
// and `lazyblob stat --prometheus` (StoreGaugesText) both publish them from here, so names,
// HELP texts and values cannot drift apart. A plain struct so that metrics/ never includes
// store/: tools/ fills it from the store's Stats() (tools/store_gauges_from_stats.h).
//
// Thread-safety: a value type and pure functions.
#ifndef LAZYBLOB_METRICS_STORE_GAUGES_H_
#define LAZYBLOB_METRICS_STORE_GAUGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "prometheus/metric_family.h"

namespace lazyblob {

struct StoreGauges {
  std::uint64_t blobs = 0;            // lazyblob_store_blobs
  std::uint64_t chunks = 0;           // lazyblob_store_chunks (unique chunks)
  std::uint64_t logical_bytes = 0;    // lazyblob_store_logical_bytes: sum of blob sizes
  std::uint64_t unique_bytes = 0;     // lazyblob_store_unique_bytes: uncompressed unique chunks
  std::uint64_t stored_bytes = 0;     // lazyblob_store_stored_bytes: compressed bytes in packs
  std::uint64_t packs = 0;            // lazyblob_store_packs
  std::uint64_t pack_file_bytes = 0;  // lazyblob_store_pack_file_bytes: pack files on disk

  // lazyblob_store_dedup_ratio: logical / unique; 1 for an empty store (as Stats() says).
  double dedup_ratio() const;
  // lazyblob_store_compression_ratio: unique / stored; 1 for an empty store.
  double compression_ratio() const;
};

// The nine lazyblob_store_* gauge families, in the order above.
std::vector<prometheus::MetricFamily> StoreGaugeFamilies(const StoreGauges& gauges);

// The Prometheus text exposition format (version 0.0.4) of StoreGaugeFamilies(), with
// # HELP and # TYPE lines: what `lazyblob stat --prometheus` prints.
std::string StoreGaugesText(const StoreGauges& gauges);

}  // namespace lazyblob

#endif  // LAZYBLOB_METRICS_STORE_GAUGES_H_
