// Cost of one READ's worth of EngineStats calls (RequestDone + BytesRequested +
// BytesWritten + 2 x ChunkLookup + Decompressed + 7 x StageTime + 2 x InFlight), from 1
// and 2 threads:
//   BM_ReadCalls/naive   plain prometheus-cpp Counter/Gauge/Histogram (locked atomics and a
//                        histogram mutex shared by all threads)
//   BM_ReadCalls/sharded PrometheusEngineStats (per-thread shards, merged at scrape)
// and the cost of a scrape (Collect + text serialization) for reference.
#include <benchmark/benchmark.h>

#include <array>
#include <memory>
#include <string>

#include "core/engine_stats.h"
#include "metrics/prometheus_engine_stats.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace lazyblob {
namespace {

// The straightforward implementation: one prometheus-cpp metric object per series.
class NaivePrometheusEngineStats final : public EngineStats {
 public:
  NaivePrometheusEngineStats()
      : registry_(std::make_shared<prometheus::Registry>()),
        requests_(prometheus::BuildCounter().Name("lazyblob_requests_total").Register(*registry_)),
        lookups_(
            prometheus::BuildCounter().Name("lazyblob_chunk_lookups_total").Register(*registry_)),
        latency_(prometheus::BuildHistogram()
                     .Name("lazyblob_read_latency_seconds")
                     .Register(*registry_)
                     .Add({}, prometheus::Histogram::BucketBoundaries(
                                  kReadLatencyBucketsSeconds.begin(),
                                  kReadLatencyBucketsSeconds.end()))),
        requested_(Counter("lazyblob_read_requested_bytes_total")),
        written_(Counter("lazyblob_written_bytes_total")),
        ahead_(Counter("lazyblob_written_ahead_bytes_total")),
        decompressions_(Counter("lazyblob_decompressions_total")),
        decompress_seconds_(Counter("lazyblob_decompress_seconds_total")),
        stage_seconds_(
            prometheus::BuildCounter().Name("lazyblob_stage_seconds_total").Register(*registry_)),
        stage_ops_(prometheus::BuildCounter()
                       .Name("lazyblob_stage_operations_total")
                       .Register(*registry_)),
        in_flight_(prometheus::BuildGauge()
                       .Name("lazyblob_requests_in_flight")
                       .Register(*registry_)
                       .Add({})) {
    const char* ops[] = {"open", "read", "close"};
    const char* results[] = {"ok", "error", "dropped"};
    for (int o = 0; o < 3; ++o) {
      for (int r = 0; r < 3; ++r) {
        request_counters_[o * 3 + r] = &requests_.Add({{"op", ops[o]}, {"result", results[r]}});
      }
    }
    const char* lookups[] = {"cache_hit", "store_hit", "missing", "corrupt"};
    for (int l = 0; l < 4; ++l) lookup_counters_[l] = &lookups_.Add({{"result", lookups[l]}});
    for (int i = 0; i < kStageCount; ++i) {
      const std::string name(StageName(static_cast<Stage>(i)));
      stage_second_counters_[i] = &stage_seconds_.Add({{"stage", name}});
      stage_op_counters_[i] = &stage_ops_.Add({{"stage", name}});
    }
  }

  void RequestDone(RequestOp op, RequestResult result, double seconds) override {
    request_counters_[static_cast<int>(op) * 3 + static_cast<int>(result)]->Increment();
    if (op == RequestOp::kRead && result != RequestResult::kDropped) latency_.Observe(seconds);
  }
  void BytesRequested(std::uint64_t bytes) override {
    requested_.Increment(static_cast<double>(bytes));
  }
  void BytesWritten(std::uint64_t bytes, std::uint64_t ahead) override {
    written_.Increment(static_cast<double>(bytes));
    ahead_.Increment(static_cast<double>(ahead));
  }
  void ChunkLookup(ChunkLookupResult r) override {
    lookup_counters_[static_cast<int>(r)]->Increment();
  }
  void Decompressed(double seconds) override {
    decompressions_.Increment();
    decompress_seconds_.Increment(seconds);
  }
  void StageTime(Stage stage, double seconds) override {
    stage_op_counters_[static_cast<int>(stage)]->Increment();
    stage_second_counters_[static_cast<int>(stage)]->Increment(seconds);
  }
  void InFlight(int delta) override { in_flight_.Increment(delta); }
  void QueueDepth(int) override {}
  void OpenObjects(int, std::string_view) override {}
  void MalformedMessage() override {}
  void DeviceReadPressure() override {}
  void WorkerRestart() override {}
  void Restored() override {}

 private:
  prometheus::Counter& Counter(const char* name) {
    return prometheus::BuildCounter().Name(name).Register(*registry_).Add({});
  }

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& lookups_;
  prometheus::Histogram& latency_;
  prometheus::Counter& requested_;
  prometheus::Counter& written_;
  prometheus::Counter& ahead_;
  prometheus::Counter& decompressions_;
  prometheus::Counter& decompress_seconds_;
  prometheus::Family<prometheus::Counter>& stage_seconds_;
  prometheus::Family<prometheus::Counter>& stage_ops_;
  prometheus::Gauge& in_flight_;
  std::array<prometheus::Counter*, 9> request_counters_{};
  std::array<prometheus::Counter*, 4> lookup_counters_{};
  std::array<prometheus::Counter*, kStageCount> stage_second_counters_{};
  std::array<prometheus::Counter*, kStageCount> stage_op_counters_{};
};

EngineStats& Naive() {
  static NaivePrometheusEngineStats stats;
  return stats;
}

PrometheusEngineStats& Sharded() {
  static std::unique_ptr<PrometheusEngineStats> stats =
      std::move(PrometheusEngineStats::Open({})).value();
  return *stats;
}

// One READ of 128 KiB served from the store (one chunk from the cache, one loaded), through
// the virtual interface as core/ calls it.
void OneRead(EngineStats& s) {
  s.InFlight(+1);
  s.BytesRequested(131072);
  s.ChunkLookup(ChunkLookupResult::kCacheHit);
  s.StageTime(Stage::kLookup, 2e-6);
  s.StageTime(Stage::kRead, 3e-6);
  s.StageTime(Stage::kDecompress, 20e-6);
  s.StageTime(Stage::kVerify, 1e-6);
  s.ChunkLookup(ChunkLookupResult::kStoreHit);
  s.Decompressed(20e-6);
  s.StageTime(Stage::kWrite, 30e-6);
  s.StageTime(Stage::kWrite, 30e-6);
  s.BytesWritten(262144, 131072);
  s.StageTime(Stage::kComplete, 5e-6);
  s.RequestDone(RequestOp::kRead, RequestResult::kOk, 45e-6);
  s.InFlight(-1);
}

void BM_ReadCalls(benchmark::State& state, EngineStats& (*stats)()) {
  EngineStats* s = &stats();
  benchmark::DoNotOptimize(s);
  for (auto _ : state) OneRead(*s);
  state.SetItemsProcessed(state.iterations());  // items = READs
}
BENCHMARK_CAPTURE(BM_ReadCalls, naive, &Naive)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_ReadCalls, sharded, []() -> EngineStats& { return Sharded(); })
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_Scrape(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(Sharded().TextExposition());
}
BENCHMARK(BM_Scrape);

}  // namespace
}  // namespace lazyblob

BENCHMARK_MAIN();
