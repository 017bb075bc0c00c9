#include "core/cache_filler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/core/engine_test_doubles.h"

namespace lazyblob {
namespace {

using testing::Bytes;
using testing::CacheFileDir;
using testing::CountingStats;
using testing::FakeChunkSource;
using testing::PatternBytes;

constexpr std::uint32_t k64K = 64 * 1024;

// The filler alone: a FakeChunkSource, a real cache file on disk, a pool of 4 threads.
class CacheFillerTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeFiller({}); }
  void MakeFiller(CacheFillerOptions options) {
    filler_.reset();
    filler_ = std::make_unique<CacheFiller>(options, &source_, &stats_, &pool_);
  }
  // A blob of `n` 64 KiB chunks plus an unaligned tail; opened, with its cache file.
  std::vector<ChunkKey> MakeBlob(int n, std::size_t tail = 0) {
    std::vector<ChunkKey> keys;
    for (int i = 0; i < n; ++i) keys.push_back(source_.AddChunk(PatternBytes(k64K, 7 + i)));
    if (tail != 0) keys.push_back(source_.AddChunk(PatternBytes(tail, 999)));
    source_.AddBlob("b", keys);
    auto blob = source_.OpenBlob("b");
    EXPECT_TRUE(blob.ok());
    file_ = std::make_shared<CacheFile>(std::move(*blob));
    fd_ = std::make_shared<const UniqueFd>(files_.NewFile("b", file_->map().size));
    return keys;
  }
  FillRequest Request(std::size_t first, std::size_t demand_end, std::size_t end) {
    FillRequest r;
    r.file = file_;
    r.fd = fd_->get();
    r.first = first;
    r.demand_end = demand_end;
    r.end = end;
    return r;
  }
  bool ChunkPresent(std::size_t i) {
    const ChunkExtent& e = file_->map().extents[i];
    return files_.Present("b", e.blob_offset, e.length);
  }
  void ExpectChunkServed(std::size_t i) {
    const ChunkExtent& e = file_->map().extents[i];
    const Bytes want = source_.BlobBytes("b");
    const Bytes got = files_.Contents("b");
    ASSERT_TRUE(ChunkPresent(i)) << "chunk " << i;
    for (std::uint64_t o = e.blob_offset; o < e.blob_offset + e.length; ++o) {
      ASSERT_EQ(got[o], want[o]) << "byte " << o;
    }
  }

  TaskPool pool_{4};
  FakeChunkSource source_;
  CountingStats stats_;
  CacheFileDir files_;
  std::unique_ptr<CacheFiller> filler_;
  std::shared_ptr<CacheFile> file_;
  std::shared_ptr<const UniqueFd> fd_;
};

TEST_F(CacheFillerTest, FillWritesDemandedChunksAndTheWindowOnce) {
  const auto keys = MakeBlob(40, 123);
  const FillResult r = filler_->Fill(Request(2, 4, 30));
  EXPECT_TRUE(r.ok());
  for (std::size_t i = 0; i < file_->map().extents.size(); ++i) {
    if (i >= 2 && i < 30) {
      ExpectChunkServed(i);
    } else {
      EXPECT_FALSE(ChunkPresent(i)) << i;
    }
  }
  // A second fill of the same chunks loads nothing again.
  EXPECT_TRUE(filler_->Fill(Request(0, 40, 41)).ok());
  for (std::size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(source_.reads(keys[i]), 1) << i;
  ExpectChunkServed(40);  // the zero-padded tail block
  EXPECT_TRUE(file_->complete());
}

TEST_F(CacheFillerTest, FillRangeCoversTheRangeAndRampsTheWindowForSequentialReaders) {
  MakeBlob(64);
  CacheFillerOptions o;
  o.write_ahead_bytes = 2 * k64K;
  MakeFiller(o);
  // First request: its chunk plus a 2-chunk window.
  EXPECT_TRUE(filler_->FillRange(file_, fd_->get(), 0, 4096).ok());
  EXPECT_TRUE(ChunkPresent(2));
  EXPECT_FALSE(ChunkPresent(3));
  // The reader caught up with the window: it doubles (4 chunks).
  EXPECT_TRUE(filler_->FillRange(file_, fd_->get(), 3 * k64K, 4096).ok());
  EXPECT_TRUE(ChunkPresent(7));
  EXPECT_FALSE(ChunkPresent(8));
  // A jump resets it.
  EXPECT_TRUE(filler_->FillRange(file_, fd_->get(), 40 * k64K, 4096).ok());
  EXPECT_TRUE(ChunkPresent(42));
  EXPECT_FALSE(ChunkPresent(43));
}

// write_ahead_async (a registry origin): the demanded chunk is written when FillRange
// returns; the window follows in a task that keeps the fd open; a READ of a window chunk
// meanwhile waits for it instead of loading it again.
TEST_F(CacheFillerTest, AsyncWriteAheadWritesTheWindowAfterAnsweringAndOnlyOnce) {
  const auto keys = MakeBlob(32);
  CacheFillerOptions o;
  o.write_ahead_bytes = 8 * k64K;
  o.write_ahead_async = true;
  MakeFiller(o);
  std::shared_ptr<const UniqueFd> fd = fd_;
  EXPECT_TRUE(filler_->FillRange(file_, std::move(fd), 0, 4096).ok());
  ExpectChunkServed(0);
  EXPECT_TRUE(filler_->FillRange(file_, fd_, 5 * k64K, 4096).ok());  // inside the window
  ExpectChunkServed(5);
  pool_.WaitIdle();
  for (std::size_t i = 0; i <= 8; ++i) ExpectChunkServed(i);
  for (std::size_t i = 0; i < keys.size(); ++i) EXPECT_LE(source_.reads(keys[i]), 1) << i;
}

TEST_F(CacheFillerTest, EachGroupIsAnnouncedToTheSourceBeforeItIsRead) {
  const auto keys = MakeBlob(20);
  ASSERT_TRUE(filler_->Fill(Request(0, 20, 20)).ok());
  auto hints = source_.hints();
  std::sort(hints.begin(), hints.end());
  // Groups of 16 chunks (1 MiB of 64 KiB chunks), then the rest.
  ASSERT_EQ(hints.size(), 2u);
  EXPECT_EQ(hints[0], std::vector<ChunkKey>(keys.begin(), keys.begin() + 16));
  EXPECT_EQ(hints[1], std::vector<ChunkKey>(keys.begin() + 16, keys.end()));
}

TEST_F(CacheFillerTest, CorruptDemandedChunkIsReportedAndNeverWritten) {
  const auto keys = MakeBlob(8);
  source_.Corrupt(keys[3]);
  const FillResult r = filler_->Fill(Request(2, 5, 8));
  EXPECT_EQ(r.failed, std::vector<std::size_t>{3});
  EXPECT_FALSE(ChunkPresent(3));
  ExpectChunkServed(2);
  ExpectChunkServed(4);
  ExpectChunkServed(7);
  EXPECT_FALSE(file_->complete());
}

TEST_F(CacheFillerTest, CorruptChunkAheadOfDemandIsNotAFailure) {
  const auto keys = MakeBlob(8);
  source_.Corrupt(keys[6]);
  EXPECT_TRUE(filler_->Fill(Request(0, 2, 8)).ok());
  EXPECT_FALSE(ChunkPresent(6));
}

// Issue 14 (8): a group that throws (bad_alloc anywhere in a fill) must still count as
// done, or the request waits forever and its claims block every later request.
TEST_F(CacheFillerTest, ExceptionInAFillFailsItsChunksAndTheFillStillReturns) {
  MakeBlob(48);  // 3 groups of 1 MiB: helpers take some
  stats_.throw_on_bytes_written = 20;
  const FillResult r = filler_->Fill(Request(0, 48, 48));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(stats_.throw_on_bytes_written.load() < 0, true);
  // No claim was left behind: every chunk can be filled now.
  const FillResult again = filler_->Fill(Request(0, 48, 48));
  EXPECT_TRUE(again.ok());
  for (std::size_t i = 0; i < 48; ++i) ExpectChunkServed(i);
}

// Sources that throw are contained by the chunk cache's single-flight loader.
TEST_F(CacheFillerTest, SourceThatThrowsFailsOnlyItsChunk) {
  const auto keys = MakeBlob(8);
  source_.ThrowOn(keys[3]);
  const FillResult r = filler_->Fill(Request(0, 8, 8));
  EXPECT_EQ(r.failed, std::vector<std::size_t>{3});
  EXPECT_FALSE(ChunkPresent(3));
  ExpectChunkServed(4);
}

TEST_F(CacheFillerTest, PrefetchWaitsWhileDemandIsInFlight) {
  MakeBlob(16);
  file_->MarkWritable();
  filler_->BeginDemand();
  filler_->StartPrefetch(file_, fd_);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(source_.total_reads(), 0) << "prefetch ran while demand was in flight";
  filler_->EndDemand();
  pool_.WaitIdle();
  for (std::size_t i = 0; i < 16; ++i) ExpectChunkServed(i);
}

// A front end's file may refuse writes for a while (cachefiles attaches the cache file only
// after the copen is processed): prefetch waits until the front end marks it writable.
TEST_F(CacheFillerTest, PrefetchWaitsUntilTheFileIsWritable) {
  MakeBlob(16);
  filler_->StartPrefetch(file_, fd_);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(source_.total_reads(), 0) << "prefetch wrote before the file was writable";
  // As the cachefiles front end does at the first READ: marked, then the demand fill.
  filler_->BeginDemand();
  file_->MarkWritable();
  EXPECT_TRUE(filler_->FillRange(file_, fd_->get(), 0, 4096).ok());
  filler_->EndDemand();
  pool_.WaitIdle();
  for (std::size_t i = 0; i < 16; ++i) ExpectChunkServed(i);
}

TEST_F(CacheFillerTest, ClosingTheFileEndsItsPrefetch) {
  MakeBlob(16);
  filler_->BeginDemand();
  filler_->StartPrefetch(file_, fd_);
  filler_->Close(*file_);
  filler_->EndDemand();
  pool_.WaitIdle();
  EXPECT_EQ(source_.total_reads(), 0);
}

TEST_F(CacheFillerTest, StoppedFillerWritesDemandButNoWindow) {
  MakeBlob(16);
  filler_->Stop();
  EXPECT_TRUE(filler_->FillRange(file_, fd_->get(), 0, 4096).ok());
  EXPECT_TRUE(ChunkPresent(0));
  EXPECT_FALSE(ChunkPresent(1));
  filler_->StartPrefetch(file_, fd_);
  pool_.WaitIdle();
  EXPECT_FALSE(ChunkPresent(5));
}

TEST_F(CacheFillerTest, ConcurrentFillsOfOneFileWriteEachChunkOnce) {
  const auto keys = MakeBlob(32);
  source_.set_read_delay(std::chrono::microseconds(200));
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] { EXPECT_TRUE(filler_->Fill(Request(t, 32, 32)).ok()); });
  }
  for (auto& th : threads) th.join();
  for (std::size_t i = 0; i < 32; ++i) {
    ExpectChunkServed(i);
    EXPECT_EQ(source_.reads(keys[i]), 1) << i;
  }
}

}  // namespace
}  // namespace lazyblob
