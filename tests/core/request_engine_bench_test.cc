// Measurements behind RequestEngine's defaults (thread count, write-ahead window). They
// print figures and assert nothing about time, so they are DISABLED_ and run by hand:
//   core_test --gtest_also_run_disabled_tests --gtest_filter='*Measure*'
#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>

#include <cstdio>

#include "core/request_engine.h"
#include "tests/core/engine_test_doubles.h"

namespace lazyblob {
namespace {

using testing::CacheFileDir;
using testing::CountingStats;
using testing::FakeChunkSource;
using testing::PatternBytes;
using testing::ScriptedDevice;

constexpr std::uint32_t k64K = 64 * 1024;

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Opens blob "a" as object 1 on a fresh engine; returns false on failure.
bool OpenA(ScriptedDevice& device, CacheFileDir& files, std::uint64_t size) {
  OpenMessage m;
  m.msg_id = 1;
  m.object_id = 1;
  m.volume_key = "erofs,a";
  m.cookie_key = "a";
  m.anon_fd = files.NewFile("a", size);
  device.Push(std::move(m));
  return device.WaitOpen(1).value_or(-1) == static_cast<std::int64_t>(size);
}

// 64 READs of distinct chunks whose loads block 2 ms each (a cold disk read).
TEST(RequestEngineMeasure, DISABLED_WorkerThreadsForBlockingLoads) {
  for (int threads : {1, 2, 4, 8, 16, 32}) {
    FakeChunkSource source;
    std::vector<ChunkKey> keys;
    for (int i = 0; i < 64; ++i) keys.push_back(source.AddChunk(PatternBytes(k64K, i)));
    source.AddBlob("a", keys);
    source.set_read_delay(std::chrono::milliseconds(2));
    ScriptedDevice device;
    CountingStats stats;
    CacheFileDir files;
    EngineOptions o;
    o.worker_threads = threads;
    o.write_ahead_bytes = 0;
    o.chunk_cache_bytes = 0;
    auto engine = RequestEngine::Start(o, &device, &source, &stats);
    ASSERT_TRUE(engine.ok());
    ASSERT_TRUE(OpenA(device, files, 64 * k64K));
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint32_t i = 0; i < 64; ++i) device.Push(ReadMessage{100 + i, 1, i * k64K, 4096});
    for (std::uint32_t i = 0; i < 64; ++i) ASSERT_TRUE(device.WaitComplete(100 + i));
    std::printf("worker_threads=%2d: 64 blocking READs in %.1f ms\n", threads, Seconds(t0) * 1e3);
  }
}

// Without raising global_control, oneTBB gives an arena hardware_concurrency - 1 workers.
TEST(RequestEngineMeasure, DISABLED_TbbDefaultWorkerLimit) {
  tbb::task_arena arena(16, 0);
  std::atomic<int> left{32};
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 32; ++i) {
    arena.enqueue([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      --left;
    });
  }
  while (left.load() > 0) std::this_thread::yield();
  std::printf("default limit, arena(16): 32 tasks blocking 2 ms in %.1f ms (hw threads %u)\n",
              Seconds(t0) * 1e3, std::thread::hardware_concurrency());
}

// A reader going through a 64 MiB blob of 64 KiB chunks in 128 KiB READs (the kernel's
// default readahead); a range already in the cache file costs no READ, as in the kernel.
TEST(RequestEngineMeasure, DISABLED_WriteAheadWindow) {
  const int kChunks = 1024;
  for (std::uint64_t window :
       {0ull, 256ull << 10, 512ull << 10, 1ull << 20, 2ull << 20, 4ull << 20}) {
    FakeChunkSource source;
    std::vector<ChunkKey> keys;
    for (int i = 0; i < kChunks; ++i) keys.push_back(source.AddChunk(PatternBytes(k64K, i)));
    source.AddBlob("a", keys);
    ScriptedDevice device;
    CountingStats stats;
    CacheFileDir files;
    EngineOptions o;
    o.worker_threads = 8;
    o.write_ahead_bytes = window;
    auto engine = RequestEngine::Start(o, &device, &source, &stats);
    ASSERT_TRUE(engine.ok());
    const std::uint64_t size = std::uint64_t{kChunks} * k64K;
    ASSERT_TRUE(OpenA(device, files, size));
    const auto t0 = std::chrono::steady_clock::now();
    int reads = 0;
    for (std::uint64_t off = 0; off < size; off += 128 << 10) {
      if (files.Present("a", off, 128 << 10)) continue;
      const std::uint32_t id = 1000 + reads++;
      device.Push(ReadMessage{id, 1, off, 128 << 10});
      ASSERT_TRUE(device.WaitComplete(id));
    }
    const double seq = Seconds(t0);
    // Random 4 KiB READs on a second object: what a window costs when nobody reads ahead.
    (*engine)->Stop();
    const std::uint64_t written_seq = stats.written.load();
    std::printf(
        "write_ahead=%5llu KiB: sequential 64 MiB in %4d READs, %.0f ms, %llu MiB written; "
        "a random 4 KiB READ writes up to %llu KiB\n",
        static_cast<unsigned long long>(window >> 10), reads, seq * 1e3,
        static_cast<unsigned long long>(written_seq >> 20),
        static_cast<unsigned long long>((k64K + window) >> 10));
  }
}

}  // namespace
}  // namespace lazyblob
