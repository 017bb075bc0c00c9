// PrometheusOriginStats: the OriginStats lazyblobd's registry origin reports to, as the
// lazyblob_origin_* metrics (metrics/README.md). A prometheus::Collectable: MetricsServer
// serves it next to PrometheusEngineStats. Origin calls are per Range GET or per chunk
// fetched, not per READ, so plain prometheus-cpp metrics (atomic adds) are cheap enough.
//
// Thread-safety: every method may be called from any thread at once.
#ifndef LAZYBLOB_METRICS_PROMETHEUS_ORIGIN_STATS_H_
#define LAZYBLOB_METRICS_PROMETHEUS_ORIGIN_STATS_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "registry/origin_stats.h"

namespace lazyblob {

class PrometheusOriginStats final : public OriginStats, public prometheus::Collectable {
 public:
  PrometheusOriginStats();
  PrometheusOriginStats(const PrometheusOriginStats&) = delete;
  PrometheusOriginStats& operator=(const PrometheusOriginStats&) = delete;

  void Resolved(OriginResult result, bool kept) override;
  void RangeRequest(OriginResult result, double seconds, std::uint64_t bytes, std::size_t chunks,
                    bool range_ignored) override;
  void ChunksFetched(std::size_t chunks) override;
  void ChunkRejected() override;
  void ChunkRead(OriginChunkFrom from) override;
  void SingleFlightJoin() override;
  void FetchedAhead(std::size_t chunks) override;
  void CacheBytes(std::uint64_t bytes, std::uint64_t limit_bytes) override;
  void Evicted(std::uint64_t packs, std::uint64_t chunks, std::uint64_t bytes) override;
  void PersistFailed() override;

  std::vector<prometheus::MetricFamily> Collect() const override;
  // Collect() in the text exposition format.
  std::string TextExposition() const;

 private:
  prometheus::Registry registry_;
  // [op: 0 resolve, 1 range][result]
  std::array<std::array<prometheus::Counter*, kOriginResultCount>, 2> requests_{};
  prometheus::Counter* kept_maps_;
  prometheus::Counter* fetched_bytes_;
  prometheus::Histogram* fetch_seconds_;
  prometheus::Histogram* chunks_per_request_;
  prometheus::Counter* range_ignored_;
  prometheus::Counter* chunks_fetched_;
  prometheus::Counter* chunks_rejected_;
  std::array<prometheus::Counter*, kOriginChunkFromCount> chunk_reads_{};
  prometheus::Counter* joins_;
  prometheus::Counter* fetched_ahead_;
  prometheus::Gauge* cache_bytes_;
  prometheus::Gauge* cache_limit_bytes_;
  prometheus::Counter* evictions_;
  prometheus::Counter* evicted_chunks_;
  prometheus::Counter* evicted_bytes_;
  prometheus::Counter* persist_failures_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_METRICS_PROMETHEUS_ORIGIN_STATS_H_
