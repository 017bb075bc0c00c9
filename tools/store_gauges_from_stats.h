// StoreGaugesFrom: the store's Stats() as the lazyblob_store_* gauges (metrics/
// store_gauges.h), for the daemon's /metrics and `lazyblob stat --prometheus` alike.
//
// Thread-safety: pure function.
#ifndef LAZYBLOB_TOOLS_STORE_GAUGES_FROM_STATS_H_
#define LAZYBLOB_TOOLS_STORE_GAUGES_FROM_STATS_H_

#include "metrics/store_gauges.h"
#include "store/chunk_store.h"

namespace lazyblob {

StoreGauges StoreGaugesFrom(const StoreStats& stats);

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_STORE_GAUGES_FROM_STATS_H_
