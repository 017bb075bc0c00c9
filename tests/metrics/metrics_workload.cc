// metrics_workload: runs a known workload through PrometheusEngineStats, serves it on a
// free loopback port, and writes what a scraper must find, for prometheus_integration.sh.
//
//   metrics_workload PORT_FILE EXPECT_FILE SERVE_SECONDS
//
// EXPECT_FILE gets one "<PromQL instant query>\t<value>" line per check; PORT_FILE gets the
// port once the workload is done (so the first scrape already sees all of it). Latencies
// are powers of two so that sums are exact in binary floating point.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "metrics/metrics_server.h"

namespace {

using lazyblob::ChunkLookupResult;
using lazyblob::RequestOp;
using lazyblob::RequestResult;
using lazyblob::Stage;

constexpr int kThreads = 2;
constexpr int kReadsOk = 500, kReadsError = 30, kReadsDropped = 5;  // per thread
constexpr double kOkSeconds = 1.0 / 4096;                           // 244us: bucket le=0.00025
constexpr double kErrSeconds = 1.0 / 64;                            // 15.6ms: bucket le=0.025
constexpr double kDecompressSeconds = 1.0 / 1024;
constexpr double kStageSeconds = 1.0 / 8192;  // each stage of a store load, the write, the complete
constexpr std::uint64_t kReadBytes = 131072, kWrittenBytes = 262144, kAheadBytes = 131072;

void ReadWorker(lazyblob::PrometheusEngineStats& s) {
  for (int i = 0; i < kReadsOk; ++i) {
    s.QueueDepth(+1);
    s.QueueDepth(-1);
    s.InFlight(+1);
    s.BytesRequested(kReadBytes);
    s.ChunkLookup(i % 4 == 0 ? ChunkLookupResult::kStoreHit : ChunkLookupResult::kCacheHit);
    if (i % 4 == 0) {
      s.Decompressed(kDecompressSeconds);
      for (Stage st : {Stage::kLookup, Stage::kRead, Stage::kDecompress, Stage::kVerify}) {
        s.StageTime(st, kStageSeconds);
      }
    }
    s.BytesWritten(kWrittenBytes, kAheadBytes);
    s.StageTime(Stage::kWrite, kStageSeconds);
    s.StageTime(Stage::kWrite, kStageSeconds);
    s.StageTime(Stage::kComplete, kStageSeconds);
    s.RequestDone(RequestOp::kRead, RequestResult::kOk, kOkSeconds);
    s.InFlight(-1);
  }
  for (int i = 0; i < kReadsError; ++i) {
    s.ChunkLookup(i % 2 == 0 ? ChunkLookupResult::kMissing : ChunkLookupResult::kCorrupt);
    s.RequestDone(RequestOp::kRead, RequestResult::kError, kErrSeconds);
  }
  for (int i = 0; i < kReadsDropped; ++i)
    s.RequestDone(RequestOp::kRead, RequestResult::kDropped, 0);
}

void RunWorkload(lazyblob::PrometheusEngineStats& s) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back([&s] { ReadWorker(s); });
  for (auto& t : threads) t.join();
  for (const char* blob : {"blob-a", "blob-b", "blob-a"}) {
    s.RequestDone(RequestOp::kOpen, RequestResult::kOk, 0.001);
    s.OpenObjects(+1, blob);
  }
  s.RequestDone(RequestOp::kOpen, RequestResult::kError, 0.001);
  s.OpenObjects(-1, "blob-b");
  s.RequestDone(RequestOp::kClose, RequestResult::kOk, 0);
  s.InFlight(+3);
  s.QueueDepth(+2);
  for (int i = 0; i < 4; ++i) s.MalformedMessage();
  s.WorkerRestart();
  s.Restored();
  s.SetStoreGauges({.blobs = 2,
                    .chunks = 1234,
                    .logical_bytes = 1 << 30,
                    .unique_bytes = 600000000,
                    .stored_bytes = 250000000});
}

void WriteExpectations(const std::string& path) {
  constexpr double kOk = double{kThreads} * kReadsOk, kErr = double{kThreads} * kReadsError;
  std::ofstream out(path);
  const auto expect = [&out](const std::string& query, double value) {
    char text[64];
    std::snprintf(text, sizeof(text), "%.17g", value);  // exact: round-trips the double
    out << query << '\t' << text << '\n';
  };
  expect(R"(lazyblob_requests_total{op="read",result="ok"})", kOk);
  expect(R"(lazyblob_requests_total{op="read",result="error"})", kErr);
  expect(R"(lazyblob_requests_total{op="read",result="dropped"})",
         double{kThreads} * kReadsDropped);
  expect(R"(lazyblob_requests_total{op="open",result="ok"})", 3);
  expect(R"(lazyblob_requests_total{op="open",result="error"})", 1);
  expect(R"(lazyblob_requests_total{op="close",result="ok"})", 1);
  expect(R"(lazyblob_requests_total{op="close",result="error"})", 0);
  expect(R"(lazyblob_read_latency_seconds_bucket{le="0.0001"})", 0);
  expect(R"(lazyblob_read_latency_seconds_bucket{le="0.00025"})", kOk);
  expect(R"(lazyblob_read_latency_seconds_bucket{le="0.025"})", kOk + kErr);
  expect(R"(lazyblob_read_latency_seconds_bucket{le="+Inf"})", kOk + kErr);
  expect("lazyblob_read_latency_seconds_count", kOk + kErr);
  expect("lazyblob_read_latency_seconds_sum", kOk * kOkSeconds + kErr * kErrSeconds);
  expect("lazyblob_read_requested_bytes_total", kOk * kReadBytes);
  expect("lazyblob_written_bytes_total", kOk * kWrittenBytes);
  expect("lazyblob_written_ahead_bytes_total", kOk * kAheadBytes);
  expect(R"(lazyblob_chunk_lookups_total{result="cache_hit"})", kOk * 3 / 4);
  expect(R"(lazyblob_chunk_lookups_total{result="store_hit"})", kOk / 4);
  expect(R"(lazyblob_chunk_lookups_total{result="missing"})", kErr / 2);
  expect(R"(lazyblob_chunk_lookups_total{result="corrupt"})", kErr / 2);
  expect("lazyblob_decompressions_total", kOk / 4);
  expect("lazyblob_decompress_seconds_total", kOk / 4 * kDecompressSeconds);
  for (const char* stage : {"lookup", "read", "decompress", "verify"}) {
    const std::string label = std::string("{stage=\"") + stage + "\"}";
    expect("lazyblob_stage_operations_total" + label, kOk / 4);
    expect("lazyblob_stage_seconds_total" + label, kOk / 4 * kStageSeconds);
  }
  expect(R"(lazyblob_stage_operations_total{stage="write"})", kOk * 2);
  expect(R"(lazyblob_stage_seconds_total{stage="write"})", kOk * 2 * kStageSeconds);
  expect(R"(lazyblob_stage_operations_total{stage="complete"})", kOk);
  expect(R"(lazyblob_stage_seconds_total{stage="complete"})", kOk * kStageSeconds);
  expect("lazyblob_requests_in_flight", 3);
  expect("lazyblob_queue_depth", 2);
  expect("lazyblob_open_objects", 2);
  expect(R"(lazyblob_open_blob{blob="blob-a"})", 2);
  expect(R"(count(lazyblob_open_blob{blob="blob-b"}) or vector(0))", 0);
  expect("lazyblob_malformed_messages_total", 4);
  expect("lazyblob_worker_restarts_total", 1);
  expect("lazyblob_restores_total", 1);
  expect("lazyblob_store_blobs", 2);
  expect("lazyblob_store_chunks", 1234);
  expect("lazyblob_store_logical_bytes", 1 << 30);
  expect("lazyblob_store_unique_bytes", 600000000);
  expect("lazyblob_store_stored_bytes", 250000000);
  expect("count(lazyblob_build_info == 1)", 1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s PORT_FILE EXPECT_FILE SERVE_SECONDS\n", argv[0]);
    return 2;
  }
  auto stats_or = lazyblob::PrometheusEngineStats::Open({});
  if (!stats_or.ok()) {
    std::fprintf(stderr, "%s\n", stats_or.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<lazyblob::PrometheusEngineStats> stats = std::move(stats_or).value();
  RunWorkload(*stats);
  WriteExpectations(argv[2]);

  auto server = lazyblob::MetricsServer::Start({.listen_address = "127.0.0.1:0", .stats = stats});
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  {
    const std::string tmp = std::string(argv[1]) + ".tmp";
    std::ofstream(tmp) << (*server)->port() << '\n';
    std::rename(tmp.c_str(), argv[1]);  // the script never reads a half-written file
  }
  std::this_thread::sleep_for(std::chrono::seconds(std::atoi(argv[3])));
  return 0;
}
