#include "metrics/prometheus_engine_stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "tests/metrics/exposition.h"

namespace lazyblob {
namespace {

using testing::DeclaredFamilies;
using testing::ParseExposition;

std::unique_ptr<PrometheusEngineStats> MakeStats(PrometheusEngineStatsOptions options = {}) {
  auto stats = PrometheusEngineStats::Open(options);
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  return std::move(stats).value();
}

TEST(PrometheusEngineStats, KnownSequenceAppearsInExposition) {
  auto stats = MakeStats();
  stats->RequestDone(RequestOp::kOpen, RequestResult::kOk, 0.001);
  stats->RequestDone(RequestOp::kRead, RequestResult::kOk, 0.00004);  // <= 50us
  stats->RequestDone(RequestOp::kRead, RequestResult::kOk, 0.0001);   // == 100us bound
  stats->RequestDone(RequestOp::kRead, RequestResult::kError, 0.003);
  stats->RequestDone(RequestOp::kRead, RequestResult::kDropped, 0);  // not in the histogram
  stats->RequestDone(RequestOp::kRead, RequestResult::kOk, 20.0);    // +Inf only
  stats->RequestDone(RequestOp::kClose, RequestResult::kDropped, 0);
  stats->BytesRequested(4096);
  stats->BytesRequested(131072);
  stats->BytesWritten(262144, 126976);
  stats->ChunkLookup(ChunkLookupResult::kCacheHit);
  stats->ChunkLookup(ChunkLookupResult::kStoreHit);
  stats->ChunkLookup(ChunkLookupResult::kStoreHit);
  stats->ChunkLookup(ChunkLookupResult::kCorrupt);
  stats->Decompressed(0.25);
  stats->Decompressed(0.5);
  stats->StageTime(Stage::kLookup, 0.125);
  stats->StageTime(Stage::kRead, 0.25);
  stats->StageTime(Stage::kRead, 0.25);
  stats->StageTime(Stage::kWrite, 2.0);
  stats->StageTime(Stage::kComplete, 0.0);
  stats->StageTime(static_cast<Stage>(kStageCount), 9.0);  // out of range: ignored
  stats->InFlight(+1);
  stats->InFlight(+1);
  stats->InFlight(-1);
  stats->QueueDepth(+3);
  stats->MalformedMessage();
  stats->WorkerRestart();
  stats->WorkerRestart();
  stats->Restored();

  const auto m = ParseExposition(stats->TextExposition());
  EXPECT_EQ(m.at(R"(lazyblob_requests_total{op="open",result="ok"})"), 1);
  EXPECT_EQ(m.at(R"(lazyblob_requests_total{op="read",result="ok"})"), 3);
  EXPECT_EQ(m.at(R"(lazyblob_requests_total{op="read",result="error"})"), 1);
  EXPECT_EQ(m.at(R"(lazyblob_requests_total{op="read",result="dropped"})"), 1);
  EXPECT_EQ(m.at(R"(lazyblob_requests_total{op="close",result="dropped"})"), 1);
  EXPECT_EQ(m.at(R"(lazyblob_requests_total{op="close",result="ok"})"), 0);
  EXPECT_EQ(m.at(R"(lazyblob_read_latency_seconds_bucket{le="5e-05"})"), 1);
  EXPECT_EQ(m.at(R"(lazyblob_read_latency_seconds_bucket{le="0.0001"})"), 2);
  EXPECT_EQ(m.at(R"(lazyblob_read_latency_seconds_bucket{le="0.0025"})"), 2);
  EXPECT_EQ(m.at(R"(lazyblob_read_latency_seconds_bucket{le="0.005"})"), 3);
  EXPECT_EQ(m.at(R"(lazyblob_read_latency_seconds_bucket{le="10"})"), 3);
  EXPECT_EQ(m.at(R"(lazyblob_read_latency_seconds_bucket{le="+Inf"})"), 4);
  EXPECT_EQ(m.at("lazyblob_read_latency_seconds_count"), 4);
  EXPECT_DOUBLE_EQ(m.at("lazyblob_read_latency_seconds_sum"), 0.00004 + 0.0001 + 0.003 + 20.0);
  EXPECT_EQ(m.at("lazyblob_read_requested_bytes_total"), 135168);
  EXPECT_EQ(m.at("lazyblob_written_bytes_total"), 262144);
  EXPECT_EQ(m.at("lazyblob_written_ahead_bytes_total"), 126976);
  EXPECT_EQ(m.at(R"(lazyblob_chunk_lookups_total{result="cache_hit"})"), 1);
  EXPECT_EQ(m.at(R"(lazyblob_chunk_lookups_total{result="store_hit"})"), 2);
  EXPECT_EQ(m.at(R"(lazyblob_chunk_lookups_total{result="missing"})"), 0);
  EXPECT_EQ(m.at(R"(lazyblob_chunk_lookups_total{result="corrupt"})"), 1);
  EXPECT_EQ(m.at("lazyblob_decompressions_total"), 2);
  EXPECT_DOUBLE_EQ(m.at("lazyblob_decompress_seconds_total"), 0.75);
  EXPECT_EQ(m.at(R"(lazyblob_stage_operations_total{stage="lookup"})"), 1);
  EXPECT_DOUBLE_EQ(m.at(R"(lazyblob_stage_seconds_total{stage="lookup"})"), 0.125);
  EXPECT_EQ(m.at(R"(lazyblob_stage_operations_total{stage="read"})"), 2);
  EXPECT_DOUBLE_EQ(m.at(R"(lazyblob_stage_seconds_total{stage="read"})"), 0.5);
  EXPECT_EQ(m.at(R"(lazyblob_stage_operations_total{stage="decompress"})"), 0);
  EXPECT_EQ(m.at(R"(lazyblob_stage_operations_total{stage="verify"})"), 0);
  EXPECT_EQ(m.at(R"(lazyblob_stage_operations_total{stage="write"})"), 1);
  EXPECT_DOUBLE_EQ(m.at(R"(lazyblob_stage_seconds_total{stage="write"})"), 2.0);
  EXPECT_EQ(m.at(R"(lazyblob_stage_operations_total{stage="complete"})"), 1);
  EXPECT_EQ(m.at(R"(lazyblob_stage_seconds_total{stage="complete"})"), 0);
  EXPECT_EQ(m.at("lazyblob_requests_in_flight"), 1);
  EXPECT_EQ(m.at("lazyblob_queue_depth"), 3);
  EXPECT_EQ(m.at("lazyblob_malformed_messages_total"), 1);
  EXPECT_EQ(m.at("lazyblob_worker_restarts_total"), 2);
  EXPECT_EQ(m.at("lazyblob_restores_total"), 1);
}

TEST(PrometheusEngineStats, TypesFollowConventions) {
  auto stats = MakeStats();
  const std::string text = stats->TextExposition();
  EXPECT_NE(text.find("# TYPE lazyblob_requests_total counter"), std::string::npos);
  EXPECT_NE(text.find("# TYPE lazyblob_read_latency_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("# TYPE lazyblob_requests_in_flight gauge"), std::string::npos);
  for (const std::string& name : DeclaredFamilies(text)) {
    EXPECT_EQ(name.rfind("lazyblob_", 0), 0u) << name;
  }
  EXPECT_EQ(text.find("summary"), std::string::npos);
}

TEST(PrometheusEngineStats, BuildInfoCarriesVersionAndRevision) {
  PrometheusEngineStatsOptions options;
  options.version = "1.2.3";
  options.revision = "abc123";
  auto stats = MakeStats(options);
  const auto m = ParseExposition(stats->TextExposition());
  EXPECT_EQ(m.at(R"(lazyblob_build_info{revision="abc123",version="1.2.3"})"), 1);
}

TEST(PrometheusEngineStats, FrontendLabelIsOnEverySeriesButBuildInfo) {
  PrometheusEngineStatsOptions options;
  options.frontend = "fanotify";
  auto stats = MakeStats(options);
  stats->RequestDone(RequestOp::kRead, RequestResult::kOk, 0.001);
  stats->OpenObjects(+1, "blob-a");
  stats->SetStoreGauges({1, 2, 3, 4, 5});
  const auto m = ParseExposition(stats->TextExposition());
  ASSERT_FALSE(m.empty());
  for (const auto& [series, value] : m) {
    if (series.rfind("lazyblob_build_info", 0) == 0) {
      EXPECT_EQ(series.find("frontend"), std::string::npos) << series;
    } else {
      EXPECT_NE(series.find(R"(frontend="fanotify")"), std::string::npos) << series;
    }
  }
  EXPECT_EQ(m.at(R"(lazyblob_requests_total{op="read",result="ok",frontend="fanotify"})"), 1);
  options.frontend = "Bad-Label";
  EXPECT_EQ(PrometheusEngineStats::Open(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(PrometheusEngineStats, EmptyVersionIsRejected) {
  PrometheusEngineStatsOptions options;
  options.version = "";
  EXPECT_EQ(PrometheusEngineStats::Open(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(PrometheusEngineStats, OpenBlobGaugeFollowsOpenAndClose) {
  auto stats = MakeStats();
  stats->OpenObjects(+1, "blob-a");
  stats->OpenObjects(+1, "blob-a");
  stats->OpenObjects(+1, "blob-b");
  stats->OpenObjects(-1, "blob-b");
  const auto m = ParseExposition(stats->TextExposition());
  EXPECT_EQ(m.at("lazyblob_open_objects"), 2);
  EXPECT_EQ(m.at(R"(lazyblob_open_blob{blob="blob-a"})"), 2);
  EXPECT_EQ(m.count(R"(lazyblob_open_blob{blob="blob-b"})"), 0u);  // closed: series gone
}

TEST(PrometheusEngineStats, OpenBlobSeriesAreCappedAndTheRestCounted) {
  PrometheusEngineStatsOptions options;
  options.max_blob_series = 3;
  auto stats = MakeStats(options);
  for (int i = 0; i < 10; ++i) stats->OpenObjects(+1, "blob-" + std::to_string(i));
  const std::string text = stats->TextExposition();
  const auto m = ParseExposition(text);
  int series = 0;
  for (const auto& [name, value] : m) series += name.rfind("lazyblob_open_blob{", 0) == 0;
  EXPECT_EQ(series, 3) << text;
  EXPECT_EQ(m.at(R"(lazyblob_open_blob{blob="blob-0"})"), 1);  // the lowest ids
  EXPECT_EQ(m.at("lazyblob_open_blob_unlisted"), 7);
  EXPECT_EQ(m.at("lazyblob_open_objects"), 10);
}

TEST(PrometheusEngineStats, OpenBlobGaugeCanBeSwitchedOff) {
  PrometheusEngineStatsOptions options;
  options.per_blob_gauge = false;
  auto stats = MakeStats(options);
  stats->OpenObjects(+1, "blob-a");
  const std::string text = stats->TextExposition();
  EXPECT_EQ(ParseExposition(text).at("lazyblob_open_objects"), 1);
  EXPECT_EQ(text.find("lazyblob_open_blob"), std::string::npos);
}

TEST(PrometheusEngineStats, StoreGaugesAppearOnceSet) {
  auto stats = MakeStats();
  EXPECT_EQ(stats->TextExposition().find("lazyblob_store_"), std::string::npos);
  stats->SetStoreGauges(
      {.blobs = 2, .chunks = 10, .logical_bytes = 1000, .unique_bytes = 800, .stored_bytes = 300});
  const auto m = ParseExposition(stats->TextExposition());
  EXPECT_EQ(m.at("lazyblob_store_blobs"), 2);
  EXPECT_EQ(m.at("lazyblob_store_chunks"), 10);
  EXPECT_EQ(m.at("lazyblob_store_logical_bytes"), 1000);
  EXPECT_EQ(m.at("lazyblob_store_unique_bytes"), 800);
  EXPECT_EQ(m.at("lazyblob_store_stored_bytes"), 300);
}

// Per-thread shards must merge exactly, including the shards of threads that have
// exited (their counts stay) and shards recycled by later threads, while scrapes run.
TEST(PrometheusEngineStats, ShardsOfManyThreadsMergeExactly) {
  auto stats = MakeStats();
  constexpr int kThreads = 4, kRounds = 3, kReads = 5000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) {
      const auto m = ParseExposition(stats->TextExposition());
      // Cumulative buckets never exceed the count, even mid-update.
      EXPECT_LE(m.at(R"(lazyblob_read_latency_seconds_bucket{le="0.0001"})"),
                m.at("lazyblob_read_latency_seconds_count"));
    }
  });
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t) {
      workers.emplace_back([&stats] {
        for (int i = 0; i < kReads; ++i) {
          stats->QueueDepth(+1);
          stats->QueueDepth(-1);
          stats->InFlight(+1);
          stats->ChunkLookup(ChunkLookupResult::kStoreHit);
          stats->ChunkLookup(ChunkLookupResult::kCacheHit);
          stats->Decompressed(0.5);
          stats->StageTime(Stage::kWrite, 0.25);
          stats->BytesRequested(3);
          stats->BytesWritten(5, 2);
          stats->RequestDone(RequestOp::kRead,
                             i % 5 == 0 ? RequestResult::kError : RequestResult::kOk, 0.0001);
          stats->InFlight(-1);
        }
        stats->InFlight(+1);  // one left in flight per thread
      });
    }
    for (auto& w : workers) w.join();
  }
  done = true;
  scraper.join();

  const double reads = double{kThreads} * kRounds * kReads;
  const auto m = ParseExposition(stats->TextExposition());
  EXPECT_EQ(m.at(R"(lazyblob_requests_total{op="read",result="ok"})"), reads * 4 / 5);
  EXPECT_EQ(m.at(R"(lazyblob_requests_total{op="read",result="error"})"), reads / 5);
  EXPECT_EQ(m.at(R"(lazyblob_read_latency_seconds_bucket{le="0.0001"})"), reads);
  EXPECT_EQ(m.at("lazyblob_read_latency_seconds_count"), reads);
  EXPECT_EQ(m.at(R"(lazyblob_chunk_lookups_total{result="store_hit"})"), reads);
  EXPECT_EQ(m.at(R"(lazyblob_chunk_lookups_total{result="cache_hit"})"), reads);
  EXPECT_EQ(m.at("lazyblob_decompressions_total"), reads);
  EXPECT_EQ(m.at("lazyblob_decompress_seconds_total"), reads * 0.5);
  EXPECT_EQ(m.at(R"(lazyblob_stage_operations_total{stage="write"})"), reads);
  EXPECT_EQ(m.at(R"(lazyblob_stage_seconds_total{stage="write"})"), reads * 0.25);
  EXPECT_EQ(m.at("lazyblob_read_requested_bytes_total"), reads * 3);
  EXPECT_EQ(m.at("lazyblob_written_bytes_total"), reads * 5);
  EXPECT_EQ(m.at("lazyblob_written_ahead_bytes_total"), reads * 2);
  EXPECT_EQ(m.at("lazyblob_queue_depth"), 0);
  EXPECT_EQ(m.at("lazyblob_requests_in_flight"), kThreads * kRounds);
}

// A gauge raised on one thread and lowered on another still nets out.
TEST(PrometheusEngineStats, GaugeDeltasFromDifferentThreadsNetOut) {
  auto stats = MakeStats();
  std::thread([&] { stats->QueueDepth(+7); }).join();
  std::thread([&] { stats->QueueDepth(-5); }).join();
  EXPECT_EQ(ParseExposition(stats->TextExposition()).at("lazyblob_queue_depth"), 2);
}

// Two instances used from one thread keep separate counts (the thread-local shard cache is
// per instance), also after one of them is destroyed.
TEST(PrometheusEngineStats, InstancesDoNotShareCounts) {
  auto a = MakeStats();
  {
    auto b = MakeStats();
    a->MalformedMessage();
    b->MalformedMessage();
    b->MalformedMessage();
    a->MalformedMessage();
    EXPECT_EQ(ParseExposition(b->TextExposition()).at("lazyblob_malformed_messages_total"), 2);
  }
  auto c = MakeStats();
  c->MalformedMessage();
  a->MalformedMessage();
  EXPECT_EQ(ParseExposition(a->TextExposition()).at("lazyblob_malformed_messages_total"), 3);
  EXPECT_EQ(ParseExposition(c->TextExposition()).at("lazyblob_malformed_messages_total"), 1);
}

}  // namespace
}  // namespace lazyblob
