#include "metrics/store_gauges.h"

#include "prometheus/text_serializer.h"

namespace lazyblob {
namespace {

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  family.metric.emplace_back();
  family.metric.back().gauge.value = value;
  return family;
}

double D(std::uint64_t v) { return static_cast<double>(v); }

}  // namespace

double StoreGauges::dedup_ratio() const {
  return unique_bytes > 0 ? D(logical_bytes) / D(unique_bytes) : 1.0;
}

double StoreGauges::compression_ratio() const {
  return stored_bytes > 0 ? D(unique_bytes) / D(stored_bytes) : 1.0;
}

std::vector<prometheus::MetricFamily> StoreGaugeFamilies(const StoreGauges& g) {
  std::vector<prometheus::MetricFamily> out;
  out.push_back(Gauge("lazyblob_store_blobs", "Blobs in the chunk store.", D(g.blobs)));
  out.push_back(Gauge("lazyblob_store_chunks", "Unique chunks in the chunk store.", D(g.chunks)));
  out.push_back(Gauge("lazyblob_store_logical_bytes",
                      "Sum of the sizes of all blobs in the store, in bytes.", D(g.logical_bytes)));
  out.push_back(Gauge("lazyblob_store_unique_bytes",
                      "Uncompressed size of the unique chunks in the store, in bytes.",
                      D(g.unique_bytes)));
  out.push_back(Gauge("lazyblob_store_stored_bytes",
                      "Compressed size of the unique chunks in the store's pack files, in bytes.",
                      D(g.stored_bytes)));
  out.push_back(Gauge("lazyblob_store_packs", "Pack files in the store.", D(g.packs)));
  out.push_back(Gauge("lazyblob_store_pack_file_bytes",
                      "Size of the store's pack files on disk, in bytes.", D(g.pack_file_bytes)));
  out.push_back(Gauge("lazyblob_store_dedup_ratio",
                      "logical_bytes / unique_bytes (1 for an empty store).", g.dedup_ratio()));
  out.push_back(Gauge("lazyblob_store_compression_ratio",
                      "unique_bytes / stored_bytes (1 for an empty store).",
                      g.compression_ratio()));
  return out;
}

std::string StoreGaugesText(const StoreGauges& gauges) {
  return prometheus::TextSerializer().Serialize(StoreGaugeFamilies(gauges));
}

}  // namespace lazyblob
