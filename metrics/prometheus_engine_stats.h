// PrometheusEngineStats: the EngineStats the daemon reports to, published in Prometheus'
// data model (every lazyblob_* metric, as listed in metrics/README.md). It is also a
// prometheus::Collectable, so MetricsServer (or anything else) can scrape it.
//
// The store gauges come from metrics/store_gauges.h, the one writer of lazyblob_store_*.
//
// Cost: the READ-path calls (RequestDone, BytesRequested, BytesWritten, ChunkLookup,
// Decompressed, StageTime, InFlight, QueueDepth, ...) write only the calling thread's StatsShard
// (no lock, no locked instruction); Collect() merges the shards. OpenObjects and
// SetStoreGauges take a mutex (OPEN/CLOSE and the tools' periodic refresh, not READ).
//
// Thread-safety: every method may be called from any thread at once. The object must
// outlive every call into it; a thread that called it may exit at any time (its counts
// stay).
#ifndef LAZYBLOB_METRICS_PROMETHEUS_ENGINE_STATS_H_
#define LAZYBLOB_METRICS_PROMETHEUS_ENGINE_STATS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine_stats.h"
#include "core/mutex.h"
#include "core/status.h"
#include "metrics/stats_shard.h"
#include "metrics/store_gauges.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace lazyblob {

// The version and git revision this binary was built from (lazyblob_build_info).
std::string BuildVersion();
std::string BuildRevision();

struct PrometheusEngineStatsOptions {
  // Publish lazyblob_open_blob{blob="<id>"}, one series per open blob id, and
  // lazyblob_open_blob_unlisted. Off: only the lazyblob_open_objects total.
  bool per_blob_gauge = true;
  // At most this many lazyblob_open_blob series (the lowest ids); the other open ids are
  // counted in lazyblob_open_blob_unlisted. Keeps a node with thousands of mounted images
  // from flooding Prometheus with series.
  int max_blob_series = 64;
  std::string version = BuildVersion();    // lazyblob_build_info{version=...}
  std::string revision = BuildRevision();  // lazyblob_build_info{revision=...}
  // When set, every lazyblob_* series but lazyblob_build_info carries frontend="<this>"
  // (the daemon sets "cachefiles" or "fanotify"). Empty (the default): no such label.
  std::string frontend;

  Status Validate() const;
};

class PrometheusEngineStats final : public EngineStats, public prometheus::Collectable {
 public:
  static Result<std::unique_ptr<PrometheusEngineStats>> Open(
      const PrometheusEngineStatsOptions& options);

  PrometheusEngineStats(const PrometheusEngineStats&) = delete;
  PrometheusEngineStats& operator=(const PrometheusEngineStats&) = delete;

  // EngineStats. For op kRead with result ok or error, `seconds` also goes into
  // lazyblob_read_latency_seconds.
  void RequestDone(RequestOp op, RequestResult result, double seconds) override;
  void BytesRequested(std::uint64_t bytes) override;
  void BytesWritten(std::uint64_t bytes, std::uint64_t ahead_bytes) override;
  void ChunkLookup(ChunkLookupResult result) override;
  void Decompressed(double seconds) override;
  // lazyblob_stage_seconds_total{stage} and lazyblob_stage_operations_total{stage}.
  void StageTime(Stage stage, double seconds) override;
  void InFlight(int delta) override;
  void QueueDepth(int delta) override;
  void OpenObjects(int delta, std::string_view blob_id) override;
  void MalformedMessage() override;
  void DeviceReadPressure() override;
  void WorkerRestart() override;
  void Restored() override;
  void PrefetchWritten(std::uint64_t bytes) override;
  void PrefetchHit() override;
  void PrefetchWasted(std::uint64_t bytes) override;
  void ReplayDone(double seconds) override;
  void TraceRecorded() override;

  // Replaces the lazyblob_store_* gauges (absent until first set).
  void SetStoreGauges(const StoreGauges& gauges);

  // prometheus::Collectable: every lazyblob_* family, shards merged.
  std::vector<prometheus::MetricFamily> Collect() const override;
  // Collect() in the text exposition format, as /metrics serves it.
  std::string TextExposition() const;

 private:
  explicit PrometheusEngineStats(const PrometheusEngineStatsOptions& options);
  StatsShard& Shard() { return LocalShard(id_, registry_); }
  void CollectShards(std::vector<prometheus::MetricFamily>& out) const;
  void CollectOthers(std::vector<prometheus::MetricFamily>& out) const;

  const PrometheusEngineStatsOptions options_;
  const std::uint64_t id_;  // unique per instance, never reused
  const std::shared_ptr<ShardRegistry> registry_;

  mutable Mutex mu_;
  std::int64_t open_objects_ LB_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::int64_t> open_blobs_ LB_GUARDED_BY(mu_);  // entries > 0 only
  bool have_store_gauges_ LB_GUARDED_BY(mu_) = false;
  StoreGauges store_gauges_ LB_GUARDED_BY(mu_);
};

}  // namespace lazyblob

#endif  // LAZYBLOB_METRICS_PROMETHEUS_ENGINE_STATS_H_
