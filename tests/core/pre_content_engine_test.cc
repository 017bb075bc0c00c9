#include "core/pre_content_engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "tests/core/engine_test_doubles.h"
#include "tests/core/pre_content_test_doubles.h"

namespace lazyblob {
namespace {

using testing::Bytes;
using testing::CountingStats;
using testing::FakeChunkSource;
using testing::PatternBytes;
using testing::ScriptedSource;

constexpr std::uint32_t k64K = 64 * 1024;

class PreContentEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeDiskTempDir("lazyblob-precontent-test-");
    ASSERT_FALSE(dir_.empty());
    // Blob "a": 16 chunks of 64 KiB and a 1000-byte tail; "b" shares its first 8 chunks.
    for (int i = 0; i < 16; ++i) keys_.push_back(source_.AddChunk(PatternBytes(k64K, i + 1)));
    keys_.push_back(source_.AddChunk(PatternBytes(1000, 99)));
    source_.AddBlob("a", keys_);
    std::vector<ChunkKey> b(keys_.begin(), keys_.begin() + 8);
    b.push_back(source_.AddChunk(PatternBytes(k64K, 77)));
    source_.AddBlob("b", b);
  }
  void TearDown() override {
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }

  void CreateEngine(PreContentEngineOptions options = {}) {
    if (options.engine.worker_threads == 0) options.engine.worker_threads = 4;
    auto engine = PreContentEngine::Create(options, &events_, &source_, &stats_);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(*engine);
  }
  // A sparse cache file for `blob`, registered and (if `mark`) marked.
  std::shared_ptr<ServedFile> AddFile(const std::string& blob, bool mark = true,
                                      const Bytes* prefill = nullptr) {
    const std::string path = Path(blob);
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(source_.Map(blob)->size)), 0);
    if (prefill != nullptr) {
      EXPECT_EQ(::pwrite(fd.get(), prefill->data(), prefill->size(), 0),
                static_cast<ssize_t>(prefill->size()));
    }
    auto opened = source_.OpenBlob(blob);
    EXPECT_TRUE(opened.ok());
    auto file = engine_->AddFile(std::move(*opened), std::move(fd));
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    if (!file.ok()) return nullptr;
    if (mark) {
      EXPECT_TRUE(engine_->Mark(**file).ok());
    }
    return *file;
  }
  void Start() { ASSERT_TRUE(engine_->Start().ok()); }
  std::string Path(const std::string& blob) const { return dir_ + "/" + blob + ".blob"; }

  // The file holds the blob's bytes in [off, off + len) (clipped).
  void ExpectServed(const std::string& blob, std::uint64_t off, std::uint64_t len) {
    const Bytes want = source_.BlobBytes(blob);
    len = std::min<std::uint64_t>(len, want.size() - off);
    Bytes got(len);
    UniqueFd fd(::open(Path(blob).c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_EQ(::pread(fd.get(), got.data(), len, static_cast<off_t>(off)),
              static_cast<ssize_t>(len));
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin() + static_cast<long>(off)))
        << "bytes differ in [" << off << ", +" << len << ")";
  }
  void ExpectNoViolations() {
    EXPECT_EQ(events_.allowed_unfilled(), 0);
    EXPECT_EQ(events_.double_answers(), 0);
    EXPECT_EQ(events_.violations(), 0);
  }

  std::string dir_;
  FakeChunkSource source_;
  std::vector<ChunkKey> keys_;
  ScriptedSource events_;
  CountingStats stats_;
  std::unique_ptr<PreContentEngine> engine_;
};

TEST_F(PreContentEngineTest, AnEventIsAllowedOnceItsRangeHoldsTheBlobsBytes) {
  CreateEngine();
  AddFile("a");
  Start();
  const std::uint32_t id = events_.Push(Path("a"), 3 * k64K + 4096, 8192);
  EXPECT_EQ(events_.WaitAnswer(id), 0);
  ExpectServed("a", 3 * k64K, k64K);
  engine_->Stop();                         // statistics are taken after the answer
  EXPECT_EQ(stats_.done[1][0].load(), 1);  // one READ ok
  ExpectNoViolations();
}

TEST_F(PreContentEngineTest, AWrittenRangeIsAllowedWithoutAnotherFill) {
  PreContentEngineOptions o;
  o.engine.write_ahead_bytes = 0;
  CreateEngine(o);
  AddFile("a");
  Start();
  ASSERT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 0, 2 * k64K)), 0);
  const int reads = source_.total_reads();
  ASSERT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 4096, 4096)), 0);
  EXPECT_EQ(source_.total_reads(), reads);
  EXPECT_EQ(engine_->counters().fast_allowed, 1u);
  EXPECT_EQ(engine_->counters().filled, 1u);
  ExpectNoViolations();
}

TEST_F(PreContentEngineTest, RangesPastTheEndAreClippedToTheBlob) {
  CreateEngine();
  AddFile("a");
  Start();
  const std::uint64_t size = source_.Map("a")->size;
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), size + 4096, 65536)), 0);
  EXPECT_EQ(source_.total_reads(), 0);
  // A read at the tail asks for whole pages past the end: only the tail is filled.
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 16 * k64K, 65536)), 0);
  ExpectServed("a", 16 * k64K, 1000);
  ExpectNoViolations();
}

TEST_F(PreContentEngineTest, ACorruptChunkDeniesItsRangeOnlyWithEio) {
  PreContentEngineOptions o;
  o.engine.write_ahead_bytes = 0;
  CreateEngine(o);
  AddFile("a");
  Start();
  source_.Corrupt(keys_[5]);
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 5 * k64K + 8192, 4096)), EIO);
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 4 * k64K, k64K)), 0);
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 6 * k64K, k64K)), 0);
  // A range that spans the corrupt chunk fails as a whole: its hole would read as zeros.
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 4 * k64K, 3 * k64K)), EIO);
  ExpectServed("a", 4 * k64K, k64K);
  EXPECT_EQ(stats_.lookups[static_cast<int>(ChunkLookupResult::kCorrupt)].load(), 2);
  ExpectNoViolations();
}

TEST_F(PreContentEngineTest, AnEventOnAFileItDoesNotServeIsDenied) {
  CreateEngine();
  AddFile("a");
  Start();
  const std::string stranger = dir_ + "/stranger";
  UniqueFd fd(::open(stranger.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_EQ(::ftruncate(fd.get(), 1 << 20), 0);
  EXPECT_EQ(events_.WaitAnswer(events_.Push(stranger, 0, 4096)), EIO);
  engine_->Stop();
  EXPECT_EQ(stats_.done[1][2].load(), 1);  // READ dropped
  ExpectNoViolations();
}

TEST_F(PreContentEngineTest, AFileIsUnmarkedOnceComplete) {
  PreContentEngineOptions o;
  o.engine.write_ahead_bytes = 0;
  CreateEngine(o);
  auto file = AddFile("b");
  Start();
  ASSERT_TRUE(events_.marked(Path("b")));
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("b"), 0, 5 * k64K)), 0);
  EXPECT_TRUE(events_.marked(Path("b")));
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("b"), 5 * k64K, 4 * k64K)), 0);
  EXPECT_FALSE(events_.marked(Path("b")));
  EXPECT_FALSE(file->marked());
  EXPECT_EQ(engine_->counters().unmarked, 1u);
  ExpectServed("b", 0, 9 * k64K);
  ExpectNoViolations();
}

TEST_F(PreContentEngineTest, ChunksPresentFromAnEarlierRunAreNotFetchedAgain) {
  CreateEngine();
  const Bytes all = source_.BlobBytes("a");
  const Bytes half(all.begin(), all.begin() + 8 * k64K);
  AddFile("a", true, &half);
  Start();
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), k64K, 7 * k64K)), 0);
  EXPECT_EQ(source_.total_reads(), 0);
  EXPECT_EQ(engine_->counters().fast_allowed, 1u);
  // A file complete on disk is not even marked.
  CreateEngine();
  std::filesystem::remove(Path("b"));
  const Bytes b = source_.BlobBytes("b");
  auto file = AddFile("b", true, &b);
  EXPECT_FALSE(file->marked());
  EXPECT_FALSE(events_.marked(Path("b")));
}

TEST_F(PreContentEngineTest, OrphansAreFilledAndAnsweredBeforeAnyNewEventIsRead) {
  CreateEngine();
  AddFile("a");
  const std::uint32_t o1 = events_.AddOrphan(Path("a"), 2 * k64K, 4096);
  const std::uint32_t o2 = events_.AddOrphan(Path("a"), 10 * k64K, 3 * k64K);
  const std::uint32_t unknown = events_.AddOrphan(dir_ + "/nothing", 0, 4096);
  const std::uint32_t live = events_.Push(Path("a"), 0, 4096);
  Start();
  EXPECT_EQ(events_.WaitAnswer(o1), 0);
  EXPECT_EQ(events_.WaitAnswer(o2), 0);
  EXPECT_EQ(events_.WaitAnswer(unknown), EIO);
  EXPECT_EQ(events_.WaitAnswer(live), 0);
  ExpectServed("a", 10 * k64K, 3 * k64K);
  EXPECT_EQ(engine_->counters().orphans, 3u);
  EXPECT_TRUE(events_.unrecorded_answers().empty());
  ExpectNoViolations();  // includes: TakeOrphans before the first Read
}

TEST_F(PreContentEngineTest, UnrecordedEventsAreAllowedOnlyOnceEveryFileIsComplete) {
  CreateEngine();
  auto file = AddFile("a");
  events_.SetUnrecordedPossible();
  Start();
  EXPECT_EQ(events_.unrecorded_answers(), std::vector<int>{0});
  EXPECT_TRUE(file->complete());
  EXPECT_FALSE(events_.marked(Path("a")));
  ExpectServed("a", 0, source_.Map("a")->size);
  ExpectNoViolations();
}

TEST_F(PreContentEngineTest, UnrecordedEventsAreDeniedWhenAFileCannotBeCompleted) {
  CreateEngine();
  auto file = AddFile("a");
  source_.Corrupt(keys_[3]);
  events_.SetUnrecordedPossible();
  Start();
  EXPECT_EQ(events_.unrecorded_answers(), std::vector<int>{EIO});
  EXPECT_FALSE(file->complete());
  EXPECT_TRUE(events_.marked(Path("a")));
}

TEST_F(PreContentEngineTest, EveryEventReadIsAnsweredWhenTheEngineStops) {
  PreContentEngineOptions o;
  o.engine.write_ahead_bytes = 0;
  CreateEngine(o);
  AddFile("a");
  Start();
  source_.Hold();
  for (int i = 0; i < 10; ++i) events_.Push(Path("a"), static_cast<std::uint64_t>(i) * k64K, 4096);
  for (int i = 0; i < 1000 && source_.blocked() == 0; ++i) ::usleep(1000);
  std::thread stopper([&] { engine_->Stop(); });
  ::usleep(20'000);
  source_.Release();
  stopper.join();
  // Everything read was answered (filled, as demanded chunks are still written on stop);
  // whatever was left in the queue stays there for the next worker.
  EXPECT_EQ(events_.answered() + events_.queued(), 10u);
  EXPECT_GT(events_.answered(), 0u);
  ExpectNoViolations();
}

TEST_F(PreContentEngineTest, AnExceptionWhileFillingDeniesTheEvent) {
  PreContentEngineOptions o;
  o.engine.write_ahead_bytes = 0;
  CreateEngine(o);
  AddFile("a");
  Start();
  source_.ThrowOn(keys_[7]);
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 7 * k64K, 4096)), EIO);
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 8 * k64K, 4096)), 0);
  ExpectNoViolations();
}

TEST_F(PreContentEngineTest, NoMoreThanMaxEventsInFlightAreRead) {
  PreContentEngineOptions o;
  o.engine.write_ahead_bytes = 0;
  o.max_events_in_flight = 2;
  CreateEngine(o);
  AddFile("a");
  Start();
  source_.Hold();
  std::vector<std::uint32_t> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(events_.Push(Path("a"), static_cast<std::uint64_t>(i) * k64K, 4096));
  }
  for (int i = 0; i < 1000 && source_.blocked() < 2; ++i) ::usleep(1000);
  ::usleep(20'000);
  EXPECT_EQ(events_.queued(), 4u);  // two taken, both waiting for the store
  source_.Release();
  for (std::uint32_t id : ids) EXPECT_EQ(events_.WaitAnswer(id), 0);
  EXPECT_LE(events_.max_batch_seen(), 2u);
  ExpectNoViolations();
}

TEST_F(PreContentEngineTest, ReadFilledReturnsTheBlobsBytesAndFailsOnACorruptChunk) {
  CreateEngine();
  auto file = AddFile("a", false);
  Bytes out(10000);
  ASSERT_TRUE(engine_->ReadFilled(*file, k64K - 5000, out).ok());
  const Bytes want = source_.BlobBytes("a");
  EXPECT_TRUE(std::equal(out.begin(), out.end(), want.begin() + (k64K - 5000)));
  source_.Corrupt(keys_[9]);
  const std::pair<std::uint64_t, std::uint64_t> ranges[] = {{9 * k64K + 100, 10}};
  Status s = engine_->FillRanges(*file, ranges);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("offset " + std::to_string(9 * k64K)), std::string::npos)
      << s.ToString();
}

TEST_F(PreContentEngineTest, ConcurrentEventsOnTwoFilesSharingChunksGetTheirBytes) {
  CreateEngine();
  AddFile("a");
  AddFile("b");
  Start();
  std::vector<std::thread> pushers;
  std::mutex mu;
  std::vector<std::uint32_t> ids;
  for (int t = 0; t < 4; ++t) {
    pushers.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      const std::string blob = t % 2 == 0 ? "a" : "b";
      const std::uint64_t size = source_.Map(blob)->size;
      for (int i = 0; i < 50; ++i) {
        const std::uint64_t off = rng() % size / 4096 * 4096;
        const std::uint32_t id = events_.Push(Path(blob), off, 4096 * (1 + rng() % 40));
        std::lock_guard lock(mu);
        ids.push_back(id);
      }
    });
  }
  for (auto& t : pushers) t.join();
  for (std::uint32_t id : ids) EXPECT_EQ(events_.WaitAnswer(id), 0);
  ExpectNoViolations();
  engine_->Stop();
  EXPECT_EQ(stats_.in_flight.load(), 0);
  EXPECT_EQ(stats_.queue_depth.load(), 0);
}

TEST_F(PreContentEngineTest, MalformedEventsAreCounted) {
  CreateEngine();
  Start();
  events_.PushMalformed();
  for (int i = 0; i < 1000 && stats_.malformed.load() == 0; ++i) ::usleep(1000);
  EXPECT_EQ(stats_.malformed.load(), 1);
}

TEST_F(PreContentEngineTest, PrefetchCompletesTheFileAndRemovesItsMark) {
  PreContentEngineOptions o;
  o.engine.prefetch_on_open = true;
  CreateEngine(o);
  auto file = AddFile("a");
  Start();
  for (int i = 0; i < 5000 && !file->complete(); ++i) ::usleep(1000);
  ASSERT_TRUE(file->complete());
  // The mark goes with the next event on the file (the fast path notices completeness).
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 0, 4096)), 0);
  EXPECT_FALSE(events_.marked(Path("a")));
  ExpectServed("a", 0, source_.Map("a")->size);
}

TEST_F(PreContentEngineTest, RemovedFilesAreUnmarkedAndTheirEventsDenied) {
  CreateEngine();
  auto file = AddFile("a");
  Start();
  engine_->RemoveFile(*file);
  EXPECT_FALSE(events_.marked(Path("a")));
  EXPECT_EQ(engine_->FindFile(file->dev(), file->ino()), nullptr);
  EXPECT_EQ(events_.WaitAnswer(events_.Push(Path("a"), 0, 4096)), EIO);
  EXPECT_EQ(stats_.open_objects.load(), 0);
}

}  // namespace
}  // namespace lazyblob
