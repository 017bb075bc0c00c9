#include "tools/store_gauges_from_stats.h"

namespace lazyblob {

StoreGauges StoreGaugesFrom(const StoreStats& s) {
  StoreGauges g;
  g.blobs = s.blobs;
  g.chunks = s.chunks;
  g.logical_bytes = s.logical_bytes;
  g.unique_bytes = s.unique_bytes;
  g.stored_bytes = s.stored_bytes;
  g.packs = s.packs;
  g.pack_file_bytes = s.pack_file_bytes;
  return g;
}

}  // namespace lazyblob
