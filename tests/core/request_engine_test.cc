#include "core/request_engine.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <random>

#include "tests/core/engine_test_doubles.h"

namespace lazyblob {
namespace {

using testing::Bytes;
using testing::CacheFileDir;
using testing::CountingStats;
using testing::FakeChunkSource;
using testing::PatternBytes;
using testing::ScriptedDevice;

constexpr std::uint32_t k64K = 64 * 1024;

class RequestEngineTest : public ::testing::Test {
 protected:
  void StartEngine(EngineOptions options = {}) {
    if (options.worker_threads == 0) options.worker_threads = 8;
    auto engine = RequestEngine::Start(options, &device_, &source_, &stats_);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(*engine);
  }
  // Opens `blob` as `object_id` and returns the copen value.
  std::int64_t Open(std::uint32_t object_id, const std::string& blob) {
    const std::uint64_t size = source_.Map(blob)->size;
    OpenMessage m;
    m.msg_id = next_msg_++;
    m.object_id = object_id;
    m.volume_key = "erofs,domain";
    m.cookie_key = blob;
    m.anon_fd = files_.NewFile(FileName(object_id), size);
    EXPECT_TRUE(m.anon_fd.valid());
    const std::uint32_t id = m.msg_id;
    device_.Push(std::move(m));
    return device_.WaitOpen(id).value_or(-99999);
  }
  std::uint32_t PushRead(std::uint32_t object_id, std::uint64_t off, std::uint64_t len) {
    const std::uint32_t id = next_msg_++;
    device_.Push(ReadMessage{id, object_id, off, len});
    return id;
  }
  void Read(std::uint32_t object_id, std::uint64_t off, std::uint64_t len) {
    ASSERT_TRUE(device_.WaitComplete(PushRead(object_id, off, len)));
  }
  static std::string FileName(std::uint32_t object_id) { return "obj" + std::to_string(object_id); }
  // Expects [off, off + len) of the object's cache file to hold exactly the blob's bytes.
  void ExpectServed(std::uint32_t object_id, const std::string& blob, std::uint64_t off,
                    std::uint64_t len) {
    const Bytes want = source_.BlobBytes(blob);
    const Bytes got = files_.Contents(FileName(object_id));
    len = std::min<std::uint64_t>(len, want.size() - off);
    ASSERT_TRUE(files_.Present(FileName(object_id), off, len)) << off << "+" << len;
    ASSERT_GE(got.size(), off + len);
    for (std::uint64_t i = off; i < off + len; ++i) {
      ASSERT_EQ(got[i], want[i]) << "byte " << i << " of " << blob;
    }
  }
  // A blob of `n` chunks of 64 KiB plus an unaligned tail of `tail` bytes.
  std::vector<ChunkKey> MakeBlob(const std::string& id, int n, std::uint32_t seed,
                                 std::size_t tail = 0) {
    std::vector<ChunkKey> keys;
    for (int i = 0; i < n; ++i) keys.push_back(source_.AddChunk(PatternBytes(k64K, seed + i)));
    if (tail != 0) keys.push_back(source_.AddChunk(PatternBytes(tail, seed + 1000)));
    source_.AddBlob(id, keys);
    return keys;
  }

  ScriptedDevice device_;
  FakeChunkSource source_;
  CountingStats stats_;
  CacheFileDir files_;
  std::unique_ptr<RequestEngine> engine_;
  std::uint32_t next_msg_ = 1;
};

TEST_F(RequestEngineTest, OpenOfKnownBlobRepliesWithItsSize) {
  MakeBlob("a", 3, 1, 100);
  StartEngine();
  EXPECT_EQ(Open(1, "a"), 3 * k64K + 100);
  EXPECT_EQ(engine_->open_objects(), 1u);
  EXPECT_EQ(stats_.open_objects.load(), 1);
}

TEST_F(RequestEngineTest, OpenOfUnknownBlobIsEnoentAndServingGoesOn) {
  MakeBlob("a", 2, 1);
  StartEngine();
  OpenMessage m;
  m.msg_id = 77;
  m.object_id = 9;
  m.volume_key = "erofs,x";
  m.cookie_key = "nope";
  m.anon_fd = files_.NewFile("nope", 4096);
  device_.Push(std::move(m));
  EXPECT_EQ(device_.WaitOpen(77), -ENOENT);
  EXPECT_EQ(Open(1, "a"), 2 * k64K);
  Read(1, 0, 4096);
  ExpectServed(1, "a", 0, 4096);
  EXPECT_EQ(engine_->open_objects(), 1u);
}

TEST_F(RequestEngineTest, OpenWithForeignVolumeKeyIsRefused) {
  MakeBlob("a", 1, 1);
  StartEngine();
  OpenMessage m;
  m.msg_id = 5;
  m.volume_key = "nfs,a";
  m.cookie_key = "a";
  device_.Push(std::move(m));
  EXPECT_EQ(device_.WaitOpen(5), -EINVAL);
  EXPECT_EQ(engine_->open_objects(), 0u);
}

TEST_F(RequestEngineTest, ReadsWriteExactlyTheSourceBytesIncludingUnalignedTail) {
  MakeBlob("a", 5, 10, 5000);
  EngineOptions o;
  o.write_ahead_bytes = 0;
  StartEngine(o);
  ASSERT_EQ(Open(1, "a"), 5 * k64K + 5000);
  const std::uint64_t size = 5 * k64K + 5000;
  for (std::uint64_t off = 0; off < size; off += 16384) Read(1, off, 16384);
  ExpectServed(1, "a", 0, size);
  // The tail went out as one zero-padded block inside the kernel-sized file.
  const Bytes got = files_.Contents(FileName(1));
  ASSERT_EQ(got.size(), AlignUp(size));
  for (std::uint64_t i = size; i < got.size(); ++i) ASSERT_EQ(got[i], std::byte{0});
  EXPECT_EQ(stats_.written.load(), AlignUp(size));  // every chunk written once
  EXPECT_EQ(device_.double_answers(), 0);
}

TEST_F(RequestEngineTest, ReadWritesOnlyWholeCoveringChunksWithoutWriteAhead) {
  MakeBlob("a", 4, 20);
  EngineOptions o;
  o.write_ahead_bytes = 0;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  Read(1, k64K + 4096, 8192);  // inside chunk 1
  engine_->Stop();
  ExpectServed(1, "a", k64K, k64K);
  EXPECT_FALSE(files_.Present(FileName(1), 0, 4096));
  EXPECT_FALSE(files_.Present(FileName(1), 2 * k64K, 4096));
  EXPECT_EQ(stats_.written.load(), k64K);
  EXPECT_EQ(stats_.written_ahead.load(), k64K - 8192);
}

TEST_F(RequestEngineTest, WriteAheadWritesFollowingChunksAndNeverTwice) {
  const auto keys = MakeBlob("a", 8, 30);
  EngineOptions o;
  o.write_ahead_bytes = 2 * k64K;
  o.chunk_cache_bytes = 0;  // every write would need a ReadChunk: counts expose rewrites
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  Read(1, 0, 4096);
  engine_->Stop();  // waits for the write-ahead too
  ExpectServed(1, "a", 0, 3 * k64K);
  EXPECT_FALSE(files_.Present(FileName(1), 3 * k64K, 4096));
  // READs inside the written-ahead window write nothing new.
  StartEngine(o);
  ASSERT_GT(Open(2, "a"), 0);  // a fresh engine; object 2 has its own file
  Read(2, 0, 8 * k64K);
  engine_->Stop();
  const std::uint64_t written_before = stats_.written.load();
  StartEngine(o);
  ASSERT_GT(Open(3, "a"), 0);
  Read(3, 0, 4096);         // chunk 0, window 1..2
  Read(3, k64K, 4096);      // inside the window: sequential, the window doubles: 2..5
  Read(3, 2 * k64K, 4096);  // and again (4 chunks, capped by the blob's end): 3..7
  engine_->Stop();
  EXPECT_EQ(stats_.written.load() - written_before, 8 * k64K);  // chunks 0..7, once each
  for (int i = 0; i < 8; ++i) EXPECT_LE(source_.reads(keys[i]), 3) << i;
}

// A window of many groups is spread over the workers: every chunk of it is written once,
// in runs of consecutive chunks (at most 1 MiB each), and the bytes are right.
TEST_F(RequestEngineTest, WideWindowIsWrittenOnceInCoalescedRunsByManyWorkers) {
  const auto keys = MakeBlob("a", 40, 50, 777);
  EngineOptions o;
  o.write_ahead_bytes = 32 * k64K;  // 2 MiB: two groups or more
  o.chunk_cache_bytes = 0;
  o.worker_threads = 4;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  Read(1, 0, 4096);  // chunk 0 plus a 32-chunk window
  ExpectServed(1, "a", 0, 33 * k64K);
  EXPECT_FALSE(files_.Present(FileName(1), 33 * k64K, 4096));
  for (int i = 0; i < 33; ++i) EXPECT_EQ(source_.reads(keys[i]), 1) << i;
  Read(1, 33 * k64K, 8 * k64K);  // the rest, tail included
  engine_->Stop();
  ExpectServed(1, "a", 0, 40 * k64K + 777);
  EXPECT_EQ(stats_.written.load(), 40 * k64K + 4096);  // each chunk once, tail padded
  const std::uint64_t writes = stats_.stage_ops[static_cast<int>(Stage::kWrite)].load();
  EXPECT_GE(writes, 2u);   // the window is more than one group
  EXPECT_LE(writes, 10u);  // runs of consecutive chunks, not one write per chunk
}

// The window ramps up for a sequential reader and starts again small after a jump.
TEST_F(RequestEngineTest, WriteAheadWindowGrowsForSequentialReadsAndResetsOnAJump) {
  MakeBlob("a", 64, 60);
  EngineOptions o;
  o.write_ahead_bytes = k64K;
  o.chunk_cache_bytes = 0;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  Read(1, 0, 4096);  // chunk 0 + window of 1: chunks 0..1
  EXPECT_TRUE(files_.Present(FileName(1), 0, 2 * k64K));
  EXPECT_FALSE(files_.Present(FileName(1), 2 * k64K, 4096));
  Read(1, 2 * k64K, 4096);  // at the window's end: chunk 2 + window of 2: up to chunk 4
  EXPECT_TRUE(files_.Present(FileName(1), 0, 5 * k64K));
  EXPECT_FALSE(files_.Present(FileName(1), 5 * k64K, 4096));
  Read(1, 5 * k64K, 4096);  // chunk 5 + window of 4: up to chunk 9
  EXPECT_TRUE(files_.Present(FileName(1), 0, 10 * k64K));
  EXPECT_FALSE(files_.Present(FileName(1), 10 * k64K, 4096));
  Read(1, 40 * k64K, 4096);  // a jump: chunk 40 + window of 1 again
  EXPECT_TRUE(files_.Present(FileName(1), 40 * k64K, 2 * k64K));
  EXPECT_FALSE(files_.Present(FileName(1), 42 * k64K, 4096));
  engine_->Stop();
  ExpectServed(1, "a", 0, 10 * k64K);
  ExpectServed(1, "a", 40 * k64K, 2 * k64K);
}

TEST_F(RequestEngineTest, DataAlreadyInTheCacheFileIsNotWrittenAgain) {
  const auto keys = MakeBlob("a", 2, 40);
  EngineOptions o;
  o.write_ahead_bytes = 0;
  StartEngine(o);
  // As after a restore: the cache file already holds chunk 0 (marked so a rewrite shows).
  const std::uint64_t size = 2 * k64K;
  OpenMessage m;
  m.msg_id = next_msg_++;
  m.object_id = 1;
  m.volume_key = "erofs,a";
  m.cookie_key = "a";
  m.anon_fd = files_.NewFile(FileName(1), size);
  AlignedBuffer marker(k64K);
  std::memset(marker.data(), 0x5a, k64K);
  ASSERT_EQ(::pwrite(m.anon_fd.get(), marker.data(), k64K, 0), static_cast<ssize_t>(k64K));
  const std::uint32_t id = m.msg_id;
  device_.Push(std::move(m));
  ASSERT_EQ(device_.WaitOpen(id), static_cast<std::int64_t>(size));
  Read(1, 0, size);
  EXPECT_EQ(source_.reads(keys[0]), 0);
  EXPECT_EQ(source_.reads(keys[1]), 1);
  const Bytes got = files_.Contents(FileName(1));
  EXPECT_EQ(got[0], std::byte{0x5a});
  ExpectServed(1, "a", k64K, k64K);
}

TEST_F(RequestEngineTest, ConcurrentReadsOfOneChunkDecompressItOnce) {
  // Two blobs share chunk `shared`; four objects read it at once.
  const ChunkKey shared = source_.AddChunk(PatternBytes(k64K, 50));
  const ChunkKey other = source_.AddChunk(PatternBytes(k64K, 51));
  source_.AddBlob("a", {shared, other});
  source_.AddBlob("b", {other, shared});
  EngineOptions o;
  o.write_ahead_bytes = 0;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  ASSERT_GT(Open(2, "a"), 0);
  ASSERT_GT(Open(3, "b"), 0);
  ASSERT_GT(Open(4, "b"), 0);
  source_.Hold();
  const std::uint32_t r1 = PushRead(1, 0, 4096), r2 = PushRead(2, 4096, 4096);
  const std::uint32_t r3 = PushRead(3, k64K, 4096), r4 = PushRead(4, k64K + 8192, 4096);
  while (source_.blocked() < 1 || stats_.in_flight.load() < 4) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let all four join
  source_.Release();
  for (auto r : {r1, r2, r3, r4}) ASSERT_TRUE(device_.WaitComplete(r));
  EXPECT_EQ(source_.reads(shared), 1);
  ExpectServed(1, "a", 0, k64K);
  ExpectServed(2, "a", 0, k64K);
  ExpectServed(3, "b", k64K, k64K);
  ExpectServed(4, "b", k64K, k64K);
}

TEST_F(RequestEngineTest, CloseDuringInFlightReadFinishesTheReadSafely) {
  MakeBlob("a", 2, 60);
  StartEngine();
  ASSERT_GT(Open(1, "a"), 0);
  source_.Hold();
  const std::uint32_t r = PushRead(1, 0, 4096);
  while (source_.blocked() < 1) std::this_thread::yield();
  device_.Push(CloseMessage{next_msg_++, 1});
  while (engine_->open_objects() != 0) std::this_thread::yield();
  source_.Release();
  ASSERT_TRUE(device_.WaitComplete(r));
  EXPECT_EQ(device_.bad_fd_completions(), 0);  // the anon fd was still open
  ExpectServed(1, "a", 0, 4096);
  EXPECT_EQ(stats_.open_objects.load(), 0);
}

TEST_F(RequestEngineTest, CorruptChunkLeavesAHoleOnlyForItsRange) {
  const auto keys = MakeBlob("a", 4, 70);
  source_.Corrupt(keys[2]);
  EngineOptions o;
  o.write_ahead_bytes = 0;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  Read(1, k64K, 3 * k64K);  // chunks 1..3; 2 is corrupt
  EXPECT_EQ(device_.completions(2), 1);
  ExpectServed(1, "a", k64K, k64K);
  ExpectServed(1, "a", 3 * k64K, k64K);
  EXPECT_FALSE(files_.Present(FileName(1), 2 * k64K, 4096));
  const Bytes got = files_.Contents(FileName(1));
  for (std::uint64_t i = 2 * k64K; i < 3 * k64K; ++i) ASSERT_EQ(got[i], std::byte{0});
  Read(1, 0, 4096);  // the engine goes on
  ExpectServed(1, "a", 0, k64K);
  EXPECT_EQ(stats_.lookups[static_cast<int>(ChunkLookupResult::kCorrupt)].load(), 1);
  EXPECT_EQ(stats_.done[static_cast<int>(RequestOp::kRead)][static_cast<int>(RequestResult::kError)]
                .load(),
            1);
}

TEST_F(RequestEngineTest, WriteAheadStopsAtACorruptChunkAndNeverWritesIt) {
  const auto keys = MakeBlob("a", 4, 80);
  source_.Corrupt(keys[1]);
  EngineOptions o;
  o.write_ahead_bytes = 4 * k64K;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  Read(1, 0, 4096);
  engine_->Stop();
  ExpectServed(1, "a", 0, k64K);
  EXPECT_FALSE(files_.Present(FileName(1), k64K, 4096));
}

TEST_F(RequestEngineTest, EveryStageOfServingAReadIsTimed) {
  MakeBlob("a", 3, 85);
  ChunkReadTimings split;
  split.lookup = std::chrono::microseconds(1);
  split.read = std::chrono::microseconds(2);
  split.decompress = std::chrono::microseconds(3);
  split.verify = std::chrono::microseconds(4);
  source_.set_reported_timings(split);
  EngineOptions o;
  o.write_ahead_bytes = 0;
  o.chunk_cache_bytes = 0;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  Read(1, 0, 3 * k64K);  // loads and writes 3 chunks
  Read(1, 0, 4096);      // already written: only a completion
  engine_->Stop();       // the last completion's stats are recorded after the answer
  auto ops = [&](Stage s) { return stats_.stage_ops[static_cast<int>(s)].load(); };
  auto seconds = [&](Stage s) { return stats_.stage_seconds[static_cast<int>(s)].load(); };
  // The store's split is passed on as reported, once per chunk loaded.
  EXPECT_EQ(ops(Stage::kLookup), 3);
  EXPECT_EQ(ops(Stage::kRead), 3);
  EXPECT_EQ(ops(Stage::kDecompress), 3);
  EXPECT_EQ(ops(Stage::kVerify), 3);
  EXPECT_NEAR(seconds(Stage::kLookup), 3e-6, 1e-12);
  EXPECT_NEAR(seconds(Stage::kRead), 6e-6, 1e-12);
  EXPECT_NEAR(seconds(Stage::kDecompress), 9e-6, 1e-12);
  EXPECT_NEAR(seconds(Stage::kVerify), 12e-6, 1e-12);
  EXPECT_NEAR(stats_.decompress_seconds.load(), 9e-6, 1e-12);  // the decompress part only
  // The engine times the writes and completions itself; the three consecutive chunks go
  // out in one pwritev.
  EXPECT_EQ(ops(Stage::kWrite), 1);
  EXPECT_GT(seconds(Stage::kWrite), 0);
  EXPECT_EQ(ops(Stage::kComplete), 2);
  EXPECT_GT(seconds(Stage::kComplete), 0);
}

TEST_F(RequestEngineTest, SourceWithoutASplitReportsNoStoreStages) {
  MakeBlob("a", 1, 86);
  EngineOptions o;
  o.write_ahead_bytes = 0;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  Read(1, 0, 4096);
  engine_->Stop();
  for (Stage s : {Stage::kLookup, Stage::kRead, Stage::kDecompress, Stage::kVerify}) {
    EXPECT_EQ(stats_.stage_ops[static_cast<int>(s)].load(), 0) << StageName(s);
  }
  EXPECT_EQ(stats_.decompressed.load(), 1);  // the whole ReadChunk, as before
  EXPECT_EQ(stats_.stage_ops[static_cast<int>(Stage::kWrite)].load(), 1);
  EXPECT_EQ(stats_.stage_ops[static_cast<int>(Stage::kComplete)].load(), 1);
}

TEST_F(RequestEngineTest, ReadForUnknownObjectIsDropped) {
  MakeBlob("a", 1, 90);
  StartEngine();
  PushRead(42, 0, 4096);
  ASSERT_TRUE(device_.WaitDrained());
  engine_->Stop();
  EXPECT_EQ(device_.completed_total(), 0u);
  EXPECT_EQ(
      stats_.done[static_cast<int>(RequestOp::kRead)][static_cast<int>(RequestResult::kDropped)]
          .load(),
      1);
}

TEST_F(RequestEngineTest, MalformedMessagesAreCountedAndServingGoesOn) {
  MakeBlob("a", 1, 91);
  StartEngine();
  device_.PushMalformed();
  EXPECT_EQ(Open(1, "a"), k64K);
  EXPECT_EQ(stats_.malformed.load(), 1);
}

TEST_F(RequestEngineTest, DeviceFailureIsSignalledOnFailedFd) {
  StartEngine();
  device_.Fail(IoError("device gone"));
  pollfd p{engine_->failed_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 60000), 1);
  EXPECT_EQ(engine_->device_status().code(), StatusCode::kIoError);
}

// Issue 14 (1): the kernel fails an OPEN it cannot install an anon fd for, and read()
// returns EMFILE. That is pressure, not a dead device: the engine backs off and reads on.
TEST_F(RequestEngineTest, EmfileOnReadIsPressureNotAFailure) {
  MakeBlob("a", 2, 95);
  StartEngine();
  device_.FailReads(Status::FromErrno(EMFILE, "read /dev/cachefiles"), 1);
  ASSERT_GT(Open(1, "a"), 0);
  Read(1, 0, 4096);
  ExpectServed(1, "a", 0, 4096);
  EXPECT_EQ(stats_.read_pressure.load(), 1);
  pollfd p{engine_->failed_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the engine gave up on the device";
  EXPECT_TRUE(engine_->device_status().ok());
}

// Issue 14 (10): the dispatcher stops reading the device while max_queued_requests wait
// for a worker, so a flood of READs cannot grow the daemon's memory without bound.
TEST_F(RequestEngineTest, DispatcherStopsReadingWhileTheQueueIsFull) {
  MakeBlob("a", 64, 96);
  EngineOptions o;
  o.worker_threads = 2;
  o.max_queued_requests = 5;
  o.write_ahead_bytes = 0;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  source_.Hold();  // every worker blocks in its first chunk read
  std::vector<std::uint32_t> ids;
  for (int i = 0; i < 64; ++i) ids.push_back(PushRead(1, i * std::uint64_t{k64K}, 4096));
  // 2 running + 5 queued: the dispatcher read no more (plus the OPEN).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (source_.blocked() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(device_.delivered(), 1 + 2 + 5);
  EXPECT_EQ(stats_.queue_depth.load(), 5);
  source_.Release();
  for (std::uint32_t id : ids) ASSERT_TRUE(device_.WaitComplete(id));
  EXPECT_EQ(stats_.queue_depth.load(), 0);
}

// The hook the crash journal and failpoints use: every READ is seen begin and end, and a
// READ the observer refuses is answered at once without data.
TEST_F(RequestEngineTest, ReadObserverSeesEveryReadAndCanFailOne) {
  struct Observer final : ReadObserver {
    bool BeginRead(std::uint32_t msg_id, std::string_view blob, std::uint64_t offset,
                   std::uint64_t) override {
      ++begun;
      return !(blob == "a" && offset == 2 * k64K);
    }
    void EndRead(std::uint32_t) override { ++ended; }
    void ObjectOpened(std::string_view blob) override { opened += blob == "a" ? 1 : 100; }
    void ObjectClosed(std::string_view blob) override { closed += blob == "a" ? 1 : 100; }
    std::atomic<int> begun{0}, ended{0}, opened{0}, closed{0};
  } observer;
  MakeBlob("a", 4, 97);
  EngineOptions o;
  o.read_observer = &observer;
  o.write_ahead_bytes = 0;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  EXPECT_EQ(observer.opened.load(), 1);  // the supervisor keeps open blobs' leases by it
  Read(1, 0, 4096);
  Read(1, 2 * k64K, 4096);
  ExpectServed(1, "a", 0, 4096);
  EXPECT_FALSE(files_.Present(FileName(1), 2 * k64K, 4096));
  device_.Push(CloseMessage{next_msg_++, 1});  // CLOSE is handled inline by the dispatcher
  ASSERT_TRUE(device_.WaitDrained());
  engine_->Stop();
  EXPECT_EQ(observer.closed.load(), 1);
  EXPECT_EQ(observer.begun.load(), 2);
  EXPECT_EQ(observer.ended.load(), 2);
  EXPECT_EQ(stats_.done[int(RequestOp::kRead)][int(RequestResult::kError)].load(), 1);
}

// Seen in the VM after a restore: read() fails with EEXIST when the kernel could not give a
// second anon fd to an OPEN of an object that has one; it dropped that request, and the
// device is fine: the engine reads on (tests/e2e/KERNEL_FACTS.md).
TEST_F(RequestEngineTest, EexistOnReadIsADroppedDuplicateOpenNotAFailure) {
  MakeBlob("a", 2, 96);
  StartEngine();
  device_.FailReads(Status::FromErrno(EEXIST, "read /dev/cachefiles"), 1);
  ASSERT_GT(Open(1, "a"), 0);
  Read(1, 0, 4096);
  ExpectServed(1, "a", 0, 4096);
  pollfd p{engine_->failed_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the engine gave up on the device";
  EXPECT_TRUE(engine_->device_status().ok());
}

TEST_F(RequestEngineTest, RestoreOnStartAsksTheDeviceBeforeReading) {
  EngineOptions o;
  o.restore_on_start = true;
  StartEngine(o);
  EXPECT_EQ(device_.restores(), 1);
  EXPECT_EQ(stats_.restored.load(), 1);
}

// Issue 14 (3): the kernel never reuses a live object id, but if it did, the gauge of open
// objects must not drift and the replaced object's hold must go.
TEST_F(RequestEngineTest, ReusedObjectIdReplacesTheObjectWithoutGaugeDrift) {
  MakeBlob("a", 1, 91);
  MakeBlob("b", 1, 92);
  StartEngine();
  ASSERT_GT(Open(1, "a"), 0);
  ASSERT_GT(Open(1, "b"), 0);
  EXPECT_EQ(stats_.open_objects.load(), 1);
  EXPECT_EQ(engine_->open_objects(), 1u);
  EXPECT_EQ(source_.holds(), 1);
  device_.Push(CloseMessage{next_msg_++, 1});
  ASSERT_TRUE(device_.WaitDrained());
  engine_->Stop();
  EXPECT_EQ(stats_.open_objects.load(), 0);
}

TEST_F(RequestEngineTest, BlobHoldIsKeptFromOpenUntilClose) {
  MakeBlob("a", 1, 92);
  StartEngine();
  ASSERT_GT(Open(1, "a"), 0);
  EXPECT_EQ(source_.holds(), 1);
  device_.Push(CloseMessage{next_msg_++, 1});
  ASSERT_TRUE(device_.WaitDrained());
  engine_->Stop();
  EXPECT_EQ(source_.holds(), 0);
}

TEST_F(RequestEngineTest, PrefetchOnOpenWritesTheWholeBlob) {
  MakeBlob("a", 6, 93, 123);
  EngineOptions o;
  o.prefetch_on_open = true;
  StartEngine(o);
  const std::uint64_t size = 6 * k64K + 123;
  ASSERT_EQ(Open(1, "a"), static_cast<std::int64_t>(size));
  Read(1, 0, 4096);  // the mount's first READ: prefetch writes only after it
  const auto deadline = std::chrono::steady_clock::now() + ScriptedDevice::kGuard;
  while (!files_.Present(FileName(1), 0, AlignUp(size)) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ExpectServed(1, "a", 0, size);
}

TEST_F(RequestEngineTest, StopUnderLoadAnswersEveryRequestItRead) {
  MakeBlob("a", 32, 100);
  source_.set_read_delay(std::chrono::microseconds(300));
  EngineOptions o;
  o.chunk_cache_bytes = 0;
  StartEngine(o);
  ASSERT_GT(Open(1, "a"), 0);
  std::vector<std::uint32_t> ids;
  for (int i = 0; i < 400; ++i) ids.push_back(PushRead(1, (i % 32) * std::uint64_t{k64K}, 4096));
  while (device_.delivered() < 50) std::this_thread::yield();
  engine_->Stop();
  const int delivered = device_.delivered() - 1;  // minus the OPEN
  EXPECT_EQ(device_.completed_total(), static_cast<std::size_t>(delivered));
  EXPECT_EQ(device_.double_answers(), 0);
  for (std::uint32_t id : ids) EXPECT_LE(device_.completions(id), 1);
  EXPECT_EQ(stats_.in_flight.load(), 0);
  EXPECT_EQ(stats_.queue_depth.load(), 0);
}

TEST_F(RequestEngineTest, ManyConcurrentReadsOverBlobsSharingChunksServeEveryByte) {
  // Three blobs built from one pool of chunks, so they share most of them.
  std::vector<ChunkKey> pool;
  for (int i = 0; i < 12; ++i) pool.push_back(source_.AddChunk(PatternBytes(k64K, 200 + i)));
  std::mt19937 rng(7);
  for (int b = 0; b < 3; ++b) {
    std::vector<ChunkKey> keys;
    for (int i = 0; i < 16; ++i) keys.push_back(pool[rng() % pool.size()]);
    keys.push_back(source_.AddChunk(PatternBytes(1000 + 777 * b, 300 + b)));
    source_.AddBlob("b" + std::to_string(b), keys);
  }
  EngineOptions o;
  o.write_ahead_bytes = 128 * 1024;
  o.chunk_cache_bytes = 4 * k64K;  // small: evictions happen
  StartEngine(o);
  for (std::uint32_t obj = 1; obj <= 6; ++obj) {
    ASSERT_GT(Open(obj, "b" + std::to_string(obj % 3)), 0);
  }
  std::vector<std::thread> readers;
  std::mutex ids_mu;
  std::vector<std::uint32_t> ids;
  std::atomic<std::uint32_t> next{1000};
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937 r(t);
      for (int i = 0; i < 150; ++i) {
        const std::uint32_t obj = 1 + r() % 6;
        const std::uint64_t size = source_.Map("b" + std::to_string(obj % 3))->size;
        const std::uint64_t off = AlignDown(r() % size);
        const std::uint64_t len = 4096u << (r() % 6);
        const std::uint32_t id = next++;
        device_.Push(ReadMessage{id, obj, off, len});
        std::lock_guard lock(ids_mu);
        ids.push_back(id);
      }
    });
  }
  for (auto& t : readers) t.join();
  for (std::uint32_t id : ids) ASSERT_TRUE(device_.WaitComplete(id));
  // Finish every READ over each object's whole range, then compare every byte.
  for (std::uint32_t obj = 1; obj <= 6; ++obj) {
    Read(obj, 0, source_.Map("b" + std::to_string(obj % 3))->size);
  }
  engine_->Stop();
  for (std::uint32_t obj = 1; obj <= 6; ++obj) {
    const std::string blob = "b" + std::to_string(obj % 3);
    ExpectServed(obj, blob, 0, source_.Map(blob)->size);
  }
  EXPECT_EQ(device_.double_answers(), 0);
  EXPECT_EQ(device_.bad_fd_completions(), 0);
}

TEST(EngineOptions, ValidateRejectsNonsense) {
  EngineOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.worker_threads = -1;
  EXPECT_FALSE(o.Validate().ok());
  o.worker_threads = 0;
  EXPECT_GE(o.ResolvedWorkerThreads(), 8);
}

}  // namespace
}  // namespace lazyblob
