// Access traces end to end on the request engine: a start recorded on one node and replayed
// on another, demand served before replay, replay stopping and bandwidth bounds.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <random>

#include "core/access_trace.h"
#include "core/request_engine.h"
#include "tests/core/engine_test_doubles.h"

namespace lazyblob {
namespace {

using testing::CacheFileDir;
using testing::CountingStats;
using testing::FakeChunkSource;
using testing::MemoryTraceStore;
using testing::PatternBytes;
using testing::ScriptedDevice;

constexpr std::uint32_t k64K = 64 * 1024;

// One daemon: its device, its (empty) cache files, its engine. Every node's source holds
// the same chunks (the origin).
struct Node {
  explicit Node(int blob_chunks) {
    std::vector<ChunkKey> keys;
    for (int i = 0; i < blob_chunks; ++i) keys.push_back(source.AddChunk(PatternBytes(k64K, i)));
    source.AddBlob("app", keys);
  }
  ~Node() {
    if (engine) engine->Stop();
  }
  void Start(EngineOptions o) {
    o.worker_threads = 8;
    if (o.write_ahead_bytes == EngineOptions{}.write_ahead_bytes) {
      o.write_ahead_bytes = 0;  // by default demand reads fetch exactly their chunks
    }
    o.chunk_cache_bytes = 0;
    auto e = RequestEngine::Start(o, &device, &source, &stats);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine = std::move(*e);
  }
  void Open() {
    OpenMessage m;
    m.msg_id = next_msg++;
    m.object_id = 1;
    m.volume_key = "erofs,app";
    m.cookie_key = "app";
    m.anon_fd = files.NewFile("app", source.Map("app")->size);
    const std::uint32_t id = m.msg_id;
    device.Push(std::move(m));
    ASSERT_GT(device.WaitOpen(id).value_or(-1), 0);
  }
  std::uint32_t PushRead(std::uint64_t chunk) {
    const std::uint32_t id = next_msg++;
    device.Push(ReadMessage{id, 1, chunk * k64K, 4096});
    return id;
  }
  void Read(std::uint64_t chunk) { ASSERT_TRUE(device.WaitComplete(PushRead(chunk))); }
  // CLOSE, then Stop: the dispatcher handles CLOSE inline, so once it joined, the record
  // is saved and the wasted bytes counted.
  void Close() {
    device.Push(CloseMessage{next_msg++, 1});
    ASSERT_TRUE(device.WaitDrained());
    engine->Stop();
  }
  bool WaitReplayEnded() {
    const auto deadline = std::chrono::steady_clock::now() + ScriptedDevice::kGuard;
    while (stats.replays.load() == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return stats.replays.load() == 1;
  }
  int ChunksPresent(int chunks) {
    int n = 0;
    for (int i = 0; i < chunks; ++i) n += files.Present("app", std::uint64_t{k64K} * i, 4096);
    return n;
  }

  ScriptedDevice device;
  FakeChunkSource source;
  CountingStats stats;
  CacheFileDir files;
  std::unique_ptr<RequestEngine> engine;
  std::uint32_t next_msg = 1;
};

AccessTrace RecordOf(std::vector<std::uint64_t> chunks, int blob_chunks) {
  AccessTrace t;
  t.blob_size = std::uint64_t{k64K} * blob_chunks;
  for (std::uint64_t c : chunks) t.blocks.push_back(c * k64K / 4096);
  return t;
}

TEST(TraceReplay, RecordedStartReplayedOnSecondNodeTurnsItsReadsIntoHits) {
  constexpr int kChunks = 64;
  // A container start: 30 reads of scattered chunks, some read twice, in no order.
  std::vector<std::uint64_t> start;
  std::mt19937 rng(16);
  for (int i = 0; i < 30; ++i) start.push_back(rng() % kChunks);
  MemoryTraceStore records;

  Node first(kChunks);
  EngineOptions o;
  o.trace.store = &records;
  o.trace.record_window = std::chrono::hours(1);
  first.Start(o);
  first.Open();
  for (std::uint64_t c : start) first.Read(c);
  first.Close();
  EXPECT_EQ(first.stats.traces_recorded.load(), 1);
  Result<AccessTrace> record = records.Load("app");
  ASSERT_TRUE(record.ok());
  std::vector<std::uint64_t> distinct;
  for (std::uint64_t c : start) {
    if (std::find(distinct.begin(), distinct.end(), c) == distinct.end()) distinct.push_back(c);
  }
  EXPECT_EQ(record->blocks, RecordOf(distinct, kChunks).blocks) << "first-access order";

  // The second node starts with empty cache files and a slow origin. The start's first
  // READ (the mount's) is what lets replay write (CacheFiller, "Background writes").
  Node second(kChunks);
  second.source.set_read_delay(std::chrono::milliseconds(2));
  second.Start(o);
  second.Open();
  second.Read(start[0]);
  ASSERT_TRUE(second.WaitReplayEnded());
  const int origin_reads_after_replay = second.source.total_reads();
  EXPECT_EQ(origin_reads_after_replay, static_cast<int>(distinct.size()));
  int later_reads = 0;
  for (std::uint64_t c : start) {
    second.Read(c);
    later_reads += c != start[0];
  }
  const double hit_fraction =
      static_cast<double>(second.stats.prefetch_hits.load()) / static_cast<double>(later_reads);
  EXPECT_GE(hit_fraction, 0.95) << second.stats.prefetch_hits.load() << " of " << later_reads;
  EXPECT_EQ(second.source.total_reads(), origin_reads_after_replay) << "demand fetched nothing";
  EXPECT_EQ(second.stats.prefetch_bytes.load(), (distinct.size() - 1) * k64K);
  second.Close();
  EXPECT_EQ(second.stats.prefetch_wasted.load(), 0u) << "the start read every replayed chunk";
  EXPECT_EQ(second.stats.traces_recorded.load(), 0) << "a replayed start is not re-recorded";
}

TEST(TraceReplay, DemandReadElsewhereDuringReplayIsServedFirst) {
  constexpr int kChunks = 64;
  MemoryTraceStore records;
  std::vector<std::uint64_t> listed;
  for (std::uint64_t c = 0; c < 48; ++c) listed.push_back(c);
  ASSERT_TRUE(records.Save("app", RecordOf(listed, kChunks)).ok());

  Node node(kChunks);
  node.source.set_read_delay(std::chrono::milliseconds(30));  // a slow origin
  EngineOptions o;
  o.trace.store = &records;
  // Bounded, the replay (three runs of 16 chunks) lasts over 3.2 s, however loaded the machine.
  o.trace.replay_bytes_per_second = 10 * k64K;
  node.Start(o);
  node.Open();
  node.Read(0);                                                      // the mount's READ
  while (node.source.total_reads() == 1) std::this_thread::yield();  // replay is fetching
  node.Read(60);                                                     // off the record
  // Answered while replay still had most of the record to fetch: it never waited behind it.
  EXPECT_EQ(node.stats.replays.load(), 0);
  EXPECT_LT(node.ChunksPresent(48), 48);
  EXPECT_TRUE(node.files.Present("app", 60 * std::uint64_t{k64K}, 4096));
  ASSERT_TRUE(node.WaitReplayEnded());
  EXPECT_EQ(node.ChunksPresent(48), 48);
}

TEST(TraceReplay, ReplayStopsWhenTheContainerReadsElsewhere) {
  constexpr int kChunks = 96;
  MemoryTraceStore records;
  std::vector<std::uint64_t> even;  // one chunk per run: replay checks between each
  for (std::uint64_t c = 0; c < kChunks; c += 2) even.push_back(c);
  ASSERT_TRUE(records.Save("app", RecordOf(even, kChunks)).ok());

  Node node(kChunks);
  node.source.set_read_delay(std::chrono::milliseconds(1));
  EngineOptions o;
  o.trace.store = &records;
  o.trace.replay_stop_after_off_record = 2;
  o.trace.replay_bytes_per_second = 10 * k64K;  // all 48 would take 4.7 s
  node.Start(o);
  node.Open();
  node.Read(1);
  node.Read(3);
  ASSERT_TRUE(node.WaitReplayEnded());
  EXPECT_LT(node.stats.prefetch_bytes.load(), even.size() * k64K);
  node.Close();
  EXPECT_EQ(node.stats.prefetch_wasted.load(), node.stats.prefetch_bytes.load())
      << "no demand read a replayed chunk";
}

TEST(TraceReplay, ReplayAsksTheSourceToFetchItsWholeRecordAheadAndCancelsWhenItStops) {
  constexpr int kChunks = 96;
  MemoryTraceStore records;
  std::vector<std::uint64_t> order;  // a start's order: not the blob's
  for (std::uint64_t c = 0; c < kChunks; c += 2) order.push_back((c * 37) % kChunks);
  ASSERT_TRUE(records.Save("app", RecordOf(order, kChunks)).ok());

  Node node(kChunks);
  node.source.set_read_delay(std::chrono::milliseconds(1));
  EngineOptions o;
  o.trace.store = &records;
  o.trace.replay_stop_after_off_record = 2;
  o.trace.replay_bytes_per_second = 10 * k64K;  // all 48 would take 4.7 s
  node.Start(o);
  node.Open();
  while (node.source.ahead_calls().empty()) std::this_thread::yield();
  std::vector<FakeChunkSource::AheadCall> calls = node.source.ahead_calls();
  ASSERT_EQ(calls.size(), 1u);
  const std::shared_ptr<const BlobMap> map = node.source.Map("app");
  std::vector<ChunkKey> want;
  for (std::uint64_t c : order) want.push_back(map->extents[c].key);
  EXPECT_EQ(calls[0].keys, want) << "the whole record, in its order";
  EXPECT_EQ(calls[0].bytes_per_second, 10u * k64K);
  EXPECT_FALSE(calls[0].hold.expired()) << "fetching ahead while replay runs";
  node.Read(1);  // two reads off the record: replay stops
  node.Read(3);
  ASSERT_TRUE(node.WaitReplayEnded());
  EXPECT_TRUE(node.source.ahead_calls()[0].hold.expired()) << "a stopped replay cancels";
}

TEST(TraceReplay, ReplayBandwidthIsBounded) {
  constexpr int kChunks = 16;
  MemoryTraceStore records;
  std::vector<std::uint64_t> odd;
  for (std::uint64_t c = 1; c < kChunks; c += 2) odd.push_back(c);  // 8 runs of 64 KiB
  ASSERT_TRUE(records.Save("app", RecordOf(odd, kChunks)).ok());

  Node node(kChunks);
  EngineOptions o;
  o.trace.store = &records;
  o.trace.replay_bytes_per_second = 10 * k64K;
  node.Start(o);
  node.Open();
  node.Read(0);  // the mount's READ (off the record)
  ASSERT_TRUE(node.WaitReplayEnded());
  // The 8th run may start only once 7 runs fit the bound: 0.7 s.
  EXPECT_GE(node.stats.replay_seconds.load(), 0.7);
  EXPECT_EQ(node.stats.prefetch_bytes.load(), odd.size() * k64K);
}

TEST(TraceReplay, AStoppingEngineSavesTheRecordOfAStillOpenBlob) {
  MemoryTraceStore records;
  Node node(8);
  EngineOptions o;
  o.trace.store = &records;
  o.trace.record_window = std::chrono::hours(1);
  node.Start(o);
  node.Open();
  node.Read(6);
  node.Read(1);
  node.engine->Stop();  // no CLOSE: the daemon stops while the image is mounted
  Result<AccessTrace> record = records.Load("app");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->blocks, RecordOf({6, 1}, 8).blocks);
  EXPECT_EQ(node.stats.traces_recorded.load(), 1);
}

TEST(TraceReplay, ChunksWrittenAheadOfADemandAreRecordedAfterIt) {
  // The kernel never asks for what was written ahead, so the record must hold it.
  MemoryTraceStore records;
  Node node(16);
  EngineOptions o;
  o.trace.store = &records;
  o.trace.record_window = std::chrono::hours(1);
  o.write_ahead_bytes = 2 * k64K;
  node.Start(o);
  node.Open();
  node.Read(9);
  node.Read(2);
  node.Close();
  Result<AccessTrace> record = records.Load("app");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->blocks, RecordOf({9, 10, 11, 2, 3, 4}, 16).blocks);
}

TEST(TraceReplay, RecordingCapsTheWriteAheadWindowSoTheRecordStaysTight) {
  MemoryTraceStore records;
  Node node(32);
  EngineOptions o;
  o.trace.store = &records;
  o.trace.record_window = std::chrono::hours(1);
  o.write_ahead_bytes = 8 * k64K;
  o.trace.record_write_ahead_bytes = 2 * k64K;
  node.Start(o);
  node.Open();
  node.Read(4);
  EXPECT_FALSE(node.files.Present("app", 7 * std::uint64_t{k64K}, 4096)) << "an 8-chunk window";
  node.Close();
  Result<AccessTrace> record = records.Load("app");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->blocks, RecordOf({4, 5, 6}, 32).blocks);
}

TEST(TraceReplay, WhileAReplayRunsADemandWritesOnlyItsOwnChunks) {
  constexpr int kChunks = 64;
  MemoryTraceStore records;
  std::vector<std::uint64_t> listed;
  for (std::uint64_t c = 0; c < 16; ++c) listed.push_back(c);
  ASSERT_TRUE(records.Save("app", RecordOf(listed, kChunks)).ok());
  Node node(kChunks);
  EngineOptions o;
  o.trace.store = &records;
  o.write_ahead_bytes = 4 * k64K;
  o.trace.replay_bytes_per_second = 10 * k64K;  // the record takes over 1.5 s
  node.Start(o);
  node.Open();
  node.Read(40);  // the mount's READ, off the record: no window while replay runs
  EXPECT_TRUE(node.files.Present("app", 40 * std::uint64_t{k64K}, 4096));
  EXPECT_FALSE(node.files.Present("app", 41 * std::uint64_t{k64K}, 4096));
  ASSERT_TRUE(node.WaitReplayEnded());
  node.Read(50);  // replay ended: the window is back
  EXPECT_TRUE(node.files.Present("app", 53 * std::uint64_t{k64K}, 4096));
}

// From a registry, a record costs round trips, as the blob's map does: at OPEN they load
// at once, not one after the other (a replaying node's mount was 0.12 s longer at 20 ms).
TEST(TraceReplay, TheRecordLoadsWhileTheBlobOpens) {
  // A store whose Load says it began; OpenBlob waits for that (up to the guard). Loaded one
  // after the other, OpenBlob would wait in vain.
  class SignallingStore final : public AccessTraceStore {
   public:
    Result<AccessTrace> Load(std::string_view blob_id) override {
      {
        std::lock_guard lock(mu);
        loading = true;
      }
      cv.notify_all();
      return records.Load(blob_id);
    }
    Status Save(std::string_view blob_id, const AccessTrace& t) override {
      return records.Save(blob_id, t);
    }
    MemoryTraceStore records;
    std::mutex mu;
    std::condition_variable cv;
    bool loading = false;
  };
  SignallingStore store;
  ASSERT_TRUE(store.records.Save("app", RecordOf({1, 2}, 8)).ok());
  Node node(8);
  bool overlapped = false;
  node.source.set_open_hook([&] {
    std::unique_lock lock(store.mu);
    overlapped = store.cv.wait_for(lock, std::chrono::seconds(5), [&] { return store.loading; });
  });
  EngineOptions o;
  o.trace.store = &store;
  node.Start(o);
  node.Open();
  EXPECT_TRUE(overlapped) << "the record was loaded only after OpenBlob returned";
  node.Read(0);
  ASSERT_TRUE(node.WaitReplayEnded());
  EXPECT_EQ(node.ChunksPresent(8), 3) << "the mount's chunk and the record's two";
  node.Close();
}

TEST(TraceReplay, NothingIsRecordedWithAZeroWindowOrWithoutAStore) {
  MemoryTraceStore records;
  Node node(4);
  EngineOptions o;
  o.trace.store = &records;  // record_window 0: off
  node.Start(o);
  node.Open();
  node.Read(2);
  node.Close();
  EXPECT_EQ(records.Load("app").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(node.stats.traces_recorded.load(), 0);
}

}  // namespace
}  // namespace lazyblob
