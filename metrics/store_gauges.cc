#include "metrics/store_gauges.h"

#include "prometheus/text_serializer.h"

namespace lazyblob {
namespace {

prometheus::MetricFamily Gauge(std::string name, std::string help, std::uint64_t value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  family.metric.emplace_back();
  family.metric.back().gauge.value = static_cast<double>(value);
  return family;
}

}  // namespace

std::vector<prometheus::MetricFamily> StoreGaugeFamilies(const StoreGauges& g) {
  std::vector<prometheus::MetricFamily> out;
  out.push_back(Gauge("lazyblob_store_blobs", "Blobs in the chunk store.", g.blobs));
  out.push_back(Gauge("lazyblob_store_chunks", "Unique chunks in the chunk store.", g.chunks));
  out.push_back(Gauge("lazyblob_store_logical_bytes",
                      "Sum of the sizes of all blobs in the store, in bytes.", g.logical_bytes));
  out.push_back(Gauge("lazyblob_store_unique_bytes",
                      "Uncompressed size of the unique chunks in the store, in bytes.",
                      g.unique_bytes));
  out.push_back(Gauge("lazyblob_store_stored_bytes",
                      "Compressed bytes of chunk data in the store's pack files.", g.stored_bytes));
  return out;
}

std::string StoreGaugesText(const StoreGauges& gauges) {
  return prometheus::TextSerializer().Serialize(StoreGaugeFamilies(gauges));
}

}  // namespace lazyblob
