#include "metrics/prometheus_origin_stats.h"

#include "prometheus/text_serializer.h"

namespace lazyblob {

PrometheusOriginStats::PrometheusOriginStats() {
  auto& requests = prometheus::BuildCounter()
                       .Name("lazyblob_origin_requests_total")
                       .Help(
                           "Requests to the registry origin by kind (resolve: an OPEN's "
                           "manifest and chunk map; range: a Range GET of chunks) and result")
                       .Register(registry_);
  for (int op = 0; op < 2; ++op) {
    for (int r = 0; r < kOriginResultCount; ++r) {
      requests_[op][r] =
          &requests.Add({{"op", op == 0 ? "resolve" : "range"},
                         {"result", std::string(OriginResultName(static_cast<OriginResult>(r)))}});
    }
  }
  kept_maps_ = &prometheus::BuildCounter()
                    .Name("lazyblob_origin_kept_map_opens_total")
                    .Help("OPENs of registry blobs served from a kept map, without a request")
                    .Register(registry_)
                    .Add({});
  fetched_bytes_ = &prometheus::BuildCounter()
                        .Name("lazyblob_origin_fetched_bytes_total")
                        .Help("Body bytes received from the registry by Range GETs")
                        .Register(registry_)
                        .Add({});
  fetch_seconds_ =
      &prometheus::BuildHistogram()
           .Name("lazyblob_origin_fetch_seconds")
           .Help("Wall time of one Range GET (retries included)")
           .Register(registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  chunks_per_request_ =
      &prometheus::BuildHistogram()
           .Name("lazyblob_origin_chunks_per_request")
           .Help("Chunks carried by one Range GET (coalescing)")
           .Register(registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128});
  range_ignored_ = &prometheus::BuildCounter()
                        .Name("lazyblob_origin_range_ignored_total")
                        .Help("Range GETs the server answered 200 with the whole blob")
                        .Register(registry_)
                        .Add({});
  auto& chunks = prometheus::BuildCounter()
                     .Name("lazyblob_origin_chunks_total")
                     .Help(
                         "Chunks received from the registry: fetched (verified, kept) or "
                         "rejected (failed XXH3-128/SHA-256; never served nor stored)")
                     .Register(registry_);
  chunks_fetched_ = &chunks.Add({{"result", "fetched"}});
  chunks_rejected_ = &chunks.Add({{"result", "rejected"}});
  auto& reads = prometheus::BuildCounter()
                    .Name("lazyblob_origin_chunk_reads_total")
                    .Help(
                        "Chunk reads by where they were served from: local store, origin "
                        "cache, or the registry (fetched or joined)")
                    .Register(registry_);
  for (int f = 0; f < kOriginChunkFromCount; ++f) {
    chunk_reads_[f] =
        &reads.Add({{"source", std::string(OriginChunkFromName(static_cast<OriginChunkFrom>(f)))}});
  }
  joins_ = &prometheus::BuildCounter()
                .Name("lazyblob_origin_singleflight_joins_total")
                .Help("Chunk reads that waited for another reader's fetch of the same chunk")
                .Register(registry_)
                .Add({});
  fetched_ahead_ = &prometheus::BuildCounter()
                        .Name("lazyblob_origin_fetched_ahead_chunks_total")
                        .Help(
                            "Chunks whose fetch trace replay started ahead of reads (their "
                            "Range GETs are also counted in lazyblob_origin_requests_total)")
                        .Register(registry_)
                        .Add({});
  cache_bytes_ = &prometheus::BuildGauge()
                      .Name("lazyblob_origin_cache_bytes")
                      .Help("Pack bytes of the origin cache (fetched chunks kept locally)")
                      .Register(registry_)
                      .Add({});
  cache_limit_bytes_ = &prometheus::BuildGauge()
                            .Name("lazyblob_origin_cache_limit_bytes")
                            .Help("The origin cache's configured bound")
                            .Register(registry_)
                            .Add({});
  evictions_ = &prometheus::BuildCounter()
                    .Name("lazyblob_origin_evicted_packs_total")
                    .Help("Origin cache packs evicted")
                    .Register(registry_)
                    .Add({});
  evicted_chunks_ = &prometheus::BuildCounter()
                         .Name("lazyblob_origin_evicted_chunks_total")
                         .Help("Fetched chunks dropped from the origin cache by eviction")
                         .Register(registry_)
                         .Add({});
  evicted_bytes_ = &prometheus::BuildCounter()
                        .Name("lazyblob_origin_evicted_bytes_total")
                        .Help("Record bytes of the evicted chunks")
                        .Register(registry_)
                        .Add({});
  persist_failures_ = &prometheus::BuildCounter()
                           .Name("lazyblob_origin_persist_failures_total")
                           .Help("Commits of fetched chunks to the origin cache that failed")
                           .Register(registry_)
                           .Add({});
}

void PrometheusOriginStats::Resolved(OriginResult result, bool kept) {
  if (kept) {
    kept_maps_->Increment();
    return;
  }
  requests_[0][static_cast<int>(result)]->Increment();
}

void PrometheusOriginStats::RangeRequest(OriginResult result, double seconds, std::uint64_t bytes,
                                         std::size_t chunks, bool range_ignored) {
  requests_[1][static_cast<int>(result)]->Increment();
  fetch_seconds_->Observe(seconds);
  chunks_per_request_->Observe(static_cast<double>(chunks));
  fetched_bytes_->Increment(static_cast<double>(bytes));
  if (range_ignored) range_ignored_->Increment();
}

void PrometheusOriginStats::ChunksFetched(std::size_t chunks) {
  chunks_fetched_->Increment(static_cast<double>(chunks));
}
void PrometheusOriginStats::ChunkRejected() { chunks_rejected_->Increment(); }
void PrometheusOriginStats::ChunkRead(OriginChunkFrom from) {
  chunk_reads_[static_cast<int>(from)]->Increment();
}
void PrometheusOriginStats::SingleFlightJoin() { joins_->Increment(); }
void PrometheusOriginStats::FetchedAhead(std::size_t chunks) {
  fetched_ahead_->Increment(static_cast<double>(chunks));
}
void PrometheusOriginStats::CacheBytes(std::uint64_t bytes, std::uint64_t limit_bytes) {
  cache_bytes_->Set(static_cast<double>(bytes));
  cache_limit_bytes_->Set(static_cast<double>(limit_bytes));
}
void PrometheusOriginStats::Evicted(std::uint64_t packs, std::uint64_t chunks,
                                    std::uint64_t bytes) {
  evictions_->Increment(static_cast<double>(packs));
  evicted_chunks_->Increment(static_cast<double>(chunks));
  evicted_bytes_->Increment(static_cast<double>(bytes));
}
void PrometheusOriginStats::PersistFailed() { persist_failures_->Increment(); }

std::vector<prometheus::MetricFamily> PrometheusOriginStats::Collect() const {
  return registry_.Collect();
}

std::string PrometheusOriginStats::TextExposition() const {
  return prometheus::TextSerializer().Serialize(Collect());
}

}  // namespace lazyblob
