// StoreGauges: the chunk store's size figures as the metrics endpoint and
// `lazyblob stat --prometheus` publish them. A plain struct so that metrics/ never
// includes store/: tools/ fills it from the store's Stats().
//
// Thread-safety: a value type.
#ifndef LAZYBLOB_METRICS_STORE_GAUGES_H_
#define LAZYBLOB_METRICS_STORE_GAUGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "prometheus/metric_family.h"

namespace lazyblob {

struct StoreGauges {
  std::uint64_t blobs = 0;          // lazyblob_store_blobs
  std::uint64_t chunks = 0;         // lazyblob_store_chunks (unique chunks)
  std::uint64_t logical_bytes = 0;  // lazyblob_store_logical_bytes: sum of blob sizes
  std::uint64_t unique_bytes = 0;   // lazyblob_store_unique_bytes: uncompressed unique chunks
  std::uint64_t stored_bytes = 0;   // lazyblob_store_stored_bytes: compressed bytes in packs
};

// The five lazyblob_store_* gauge families.
std::vector<prometheus::MetricFamily> StoreGaugeFamilies(const StoreGauges& gauges);

// The Prometheus text exposition format (version 0.0.4) of StoreGaugeFamilies(), with
// # HELP and # TYPE lines: what `lazyblob stat --prometheus` prints.
std::string StoreGaugesText(const StoreGauges& gauges);

}  // namespace lazyblob

#endif  // LAZYBLOB_METRICS_STORE_GAUGES_H_
