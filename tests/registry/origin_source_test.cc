// OriginSource and OriginCache in process, against the REAL registry registry_env.sh
// starts: many threads reading the same chunks share one fetch per chunk (single flight),
// every byte is right, and a source reopened on the same cache serves without the
// registry. In process so that the TSan and ASan builds see the origin's threads.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "core/aligned_buffer.h"
#include "registry/origin_source.h"
#include "registry/pusher.h"
#include "store/hashing.h"
#include "tests/store/store_test_util.h"

namespace lazyblob {
namespace {

using testing::RandomBytes;
using testing::TempDir;
using testing::WriteFile;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// Counts what the origin reports.
class CountingOriginStats final : public OriginStats {
 public:
  void Resolved(OriginResult r, bool kept) override { (kept ? kept_ : resolved_) += 1; }
  void RangeRequest(OriginResult r, double, std::uint64_t, std::size_t, bool) override {
    requests_ += 1;
    if (r != OriginResult::kOk) failed_requests_ += 1;
  }
  void ChunksFetched(std::size_t n) override { fetched_ += n; }
  void ChunkRejected() override { rejected_ += 1; }
  void ChunkRead(OriginChunkFrom from) override { reads_[static_cast<int>(from)] += 1; }
  void SingleFlightJoin() override { joins_ += 1; }
  void FetchedAhead(std::size_t n) override { ahead_ += n; }
  void CacheBytes(std::uint64_t bytes, std::uint64_t) override { cache_bytes_ = bytes; }
  void Evicted(std::uint64_t, std::uint64_t, std::uint64_t) override {}
  void PersistFailed() override { persist_failed_ += 1; }

  std::atomic<int> resolved_{0}, kept_{0}, requests_{0}, failed_requests_{0}, fetched_{0},
      rejected_{0}, joins_{0}, persist_failed_{0}, ahead_{0};
  std::atomic<int> reads_[kOriginChunkFromCount] = {};
  std::atomic<std::uint64_t> cache_bytes_{0};
};

class OriginSourceLive : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("LB_REG_PLAIN").empty()) GTEST_SKIP() << "run through tests/registry/registry_env.sh";
    repo_ = "os/" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    for (char& c : repo_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto src = ChunkStore::Open(testing::WriterOptions(tmp_ / "src"));
    ASSERT_TRUE(src.ok());
    src_ = std::move(*src);
    blob_ = RandomBytes(2 << 20, 5, /*text=*/true);
    auto random = RandomBytes(1 << 20, 6);
    blob_.insert(blob_.end(), random.begin(), random.end());
    WriteFile(tmp_ / "img", blob_);
    ImportOptions o;
    o.id = "img";
    ASSERT_TRUE(src_->ImportBlob(tmp_ / "img", o).ok());
    auto client = Client(Env("LB_REG_PLAIN"));
    ASSERT_TRUE(PushBlobs(*client, *src_, {"img"}, PushOptions{}).ok());
  }

  std::unique_ptr<RegistryClient> Client(const std::string& host) {
    RegistryOptions o;
    o.ref = RegistryRef::Parse("http://" + host + "/" + repo_).value();
    o.push = true;
    o.http.connect_timeout = std::chrono::milliseconds(1000);
    o.http.request_timeout = std::chrono::milliseconds(5000);
    o.http.max_attempts = 2;
    o.http.backoff_initial = std::chrono::milliseconds(10);
    return std::move(RegistryClient::Open(o)).value();
  }

  // A client of `host`, the cache in tmp_/origin and a source over them.
  void OpenOrigin(const std::string& host, OriginSourceOptions so = {}) {
    source_.reset();
    cache_.reset();
    client_ = Client(host);
    OriginCacheOptions co;
    co.dir = tmp_ / "origin/store";
    auto cache = OriginCache::Open(co, &stats_);
    ASSERT_TRUE(cache.ok()) << cache.status().ToString();
    cache_ = std::move(*cache);
    so.maps_dir = tmp_ / "origin/maps";
    auto source = OriginSource::Open(so, nullptr, client_.get(), cache_.get(), &stats_);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    source_ = std::move(*source);
  }

  // Reads every chunk of the blob as runs of `run` chunks (with their WillRead hint) and
  // checks the bytes; the number of chunks that failed.
  int ReadAll(const BlobMap& map, std::size_t run, std::size_t start) {
    int failed = 0;
    const std::size_t n = map.extents.size();
    auto read_runs = [&](std::size_t from, std::size_t to) {
      for (std::size_t first = from; first < to; first += run) {
        const std::size_t count = std::min(run, to - first);
        source_->WillRead(std::span(map.extents).subspan(first, count));
        for (std::size_t i = first; i < first + count; ++i) {
          const ChunkExtent& e = map.extents[i];
          AlignedBuffer buf(e.length);
          if (!source_->ReadChunk(e, buf.span()).ok() ||
              std::memcmp(buf.data(), blob_.data() + e.blob_offset, e.length) != 0) {
            ++failed;
          }
        }
      }
    };
    read_runs(start % n, n);  // from `start` to the end, then the beginning
    read_runs(0, start % n);
    return failed;
  }

  TempDir tmp_;
  std::string repo_;
  std::unique_ptr<ChunkStore> src_;
  std::vector<std::byte> blob_;
  CountingOriginStats stats_;
  std::unique_ptr<RegistryClient> client_;
  std::unique_ptr<OriginCache> cache_;
  std::unique_ptr<OriginSource> source_;
};

TEST_F(OriginSourceLive, ConcurrentReadersShareOneFetchPerChunk) {
  OpenOrigin(Env("LB_REG_PLAIN"));
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, source_->OpenBlob("img"));
  std::set<ChunkKey> distinct;
  for (const ChunkExtent& e : blob.map->extents) distinct.insert(e.key);
  std::atomic<int> failed{0};
  std::vector<std::thread> readers;
  for (std::size_t t = 0; t < 6; ++t) {
    readers.emplace_back([&, t] { failed += ReadAll(*blob.map, 1 + t % 3 * 4, t * 5); });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(stats_.fetched_.load(), static_cast<int>(distinct.size()));
  EXPECT_EQ(stats_.rejected_.load(), 0);
  EXPECT_EQ(stats_.resolved_.load(), 1);
  EXPECT_LT(stats_.requests_.load(), static_cast<int>(distinct.size())) << "no coalescing";
  std::printf("%d chunks, %d Range GETs, %d single-flight joins\n", stats_.fetched_.load(),
              stats_.requests_.load(), stats_.joins_.load());
  cache_->Flush();
  EXPECT_EQ(stats_.persist_failed_.load(), 0);
  EXPECT_GT(stats_.cache_bytes_.load(), 0u);
}

TEST_F(OriginSourceLive, AReopenedSourceServesFromItsCacheWithoutTheRegistry) {
  OpenOrigin(Env("LB_REG_PLAIN"));
  {
    ASSERT_OK_AND_ASSIGN(OpenedBlob blob, source_->OpenBlob("img"));
    EXPECT_EQ(ReadAll(*blob.map, 8, 0), 0);
  }
  OpenOrigin(Env("LB_REG_DOWN"));  // destroys the old source and cache first
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, source_->OpenBlob("img"));
  EXPECT_EQ(stats_.kept_.load(), 1);
  const int before = stats_.requests_.load();
  const int cache_reads = stats_.reads_[static_cast<int>(OriginChunkFrom::kCache)].load();
  EXPECT_EQ(ReadAll(*blob.map, 3, 7), 0);
  EXPECT_EQ(stats_.requests_.load(), before);
  EXPECT_EQ(stats_.reads_[static_cast<int>(OriginChunkFrom::kCache)].load() - cache_reads,
            static_cast<int>(blob.map->extents.size()));
  EXPECT_EQ(source_->OpenBlob("never-pushed").status().code(), StatusCode::kIoError);
}

// Waits up to 30 s for `done`.
template <typename Pred>
bool WaitFor(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST_F(OriginSourceLive, FetchAheadFetchesTheHintedChunksBeforeAnyRead) {
  OpenOrigin(Env("LB_REG_PLAIN"));
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, source_->OpenBlob("img"));
  std::set<ChunkKey> distinct;
  for (const ChunkExtent& e : blob.map->extents) distinct.insert(e.key);
  // The hint in a start's order: the second half first.
  std::vector<ChunkExtent> hint(blob.map->extents.begin() + blob.map->extents.size() / 2,
                                blob.map->extents.end());
  hint.insert(hint.end(), blob.map->extents.begin(),
              blob.map->extents.begin() + blob.map->extents.size() / 2);
  std::shared_ptr<void> hold = source_->FetchAhead(hint, 0);
  ASSERT_NE(hold, nullptr);
  const int n = static_cast<int>(distinct.size());
  ASSERT_TRUE(WaitFor([&] { return stats_.fetched_.load() == n; })) << stats_.fetched_.load();
  EXPECT_EQ(stats_.ahead_.load(), n);
  EXPECT_LT(stats_.requests_.load(), n) << "no coalescing";
  // Every chunk is fetched: a read finds it in the cache, or joins its fetch when that has
  // not landed yet (a slow machine); either way no read sends a request of its own.
  const int requests = stats_.requests_.load();
  EXPECT_EQ(ReadAll(*blob.map, 4, 0), 0);
  EXPECT_EQ(stats_.requests_.load(), requests) << "a read went to the registry";
  EXPECT_EQ(stats_.fetched_.load(), n);
}

TEST_F(OriginSourceLive, ReadersDuringFetchAheadGetTheRightBytesAndEachChunkIsFetchedOnce) {
  OriginSourceOptions so;
  so.ahead_requests = 3;
  so.coalesce.max_request_bytes = 256 << 10;  // many requests, so reads and fetches interleave
  OpenOrigin(Env("LB_REG_PLAIN"), so);
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, source_->OpenBlob("img"));
  std::set<ChunkKey> distinct;
  for (const ChunkExtent& e : blob.map->extents) distinct.insert(e.key);
  std::shared_ptr<void> hold = source_->FetchAhead(blob.map->extents, 0);
  std::atomic<int> failed{0};
  std::vector<std::thread> readers;
  for (std::size_t t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] { failed += ReadAll(*blob.map, 1 + t * 3, t * 11); });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(stats_.fetched_.load(), static_cast<int>(distinct.size()));
  EXPECT_EQ(stats_.rejected_.load(), 0);
  std::printf("%d chunks: %d fetched ahead, %d single-flight joins, %d Range GETs\n",
              stats_.fetched_.load(), stats_.ahead_.load(), stats_.joins_.load(),
              stats_.requests_.load());
}

TEST_F(OriginSourceLive, FetchAheadKeepsToItsBandwidthAndStopsWhenTheHoldIsDropped) {
  OriginSourceOptions so;
  so.ahead_requests = 2;
  so.coalesce.max_request_bytes = 64 << 10;  // a request per chunk or so
  OpenOrigin(Env("LB_REG_PLAIN"), so);
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, source_->OpenBlob("img"));
  // 3 MiB of chunks at 128 KiB/s would take over 10 s.
  std::shared_ptr<void> hold = source_->FetchAhead(blob.map->extents, 128 << 10);
  ASSERT_TRUE(WaitFor([&] { return stats_.ahead_.load() > 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  hold.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // requests under way land
  const int fetched = stats_.fetched_.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(stats_.fetched_.load(), fetched) << "fetching went on without its hold";
  EXPECT_LT(fetched, static_cast<int>(blob.map->extents.size()) / 2)
      << "the bandwidth bound was not kept";
  // What was not fetched ahead is still read right (fetched on demand).
  EXPECT_EQ(ReadAll(*blob.map, 2, 0), 0);
}

}  // namespace
}  // namespace lazyblob
