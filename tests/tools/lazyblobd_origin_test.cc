// lazyblobd --origin against REAL registries (docker-registry, CNCF distribution 2.8) and
// fault-injecting proxies started by tests/registry/registry_env.sh: images are imported
// and pushed with the real `lazyblob`, then served by real lazyblobd processes (supervisor
// + worker) on KernelSimulators whose readers compare every byte with the source images.
// ctest runs these through registry_env.sh (tests/tools/lazyblobd_origin.cmake); without
// it they skip.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "store/chunk_store.h"

#if defined(LAZYBLOBD_BIN) && defined(LAZYBLOB_BIN)
#include "tests/tools/origin_node.h"

namespace lazyblob {
namespace {

using testing::OriginNode;
using testing::Sample;

constexpr std::size_t k64K = 64 * 1024;

class LazyblobdOrigin : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::Env("LB_REG_PLAIN").empty()) {
      GTEST_SKIP() << "run through tests/registry/registry_env.sh";
    }
    dir_ = testing::MakeDiskTempDir("lazyblobd-origin-");
    ASSERT_FALSE(dir_.empty());
    repo_ = "o/" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    for (char& c : repo_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // v1 and v2 share most 64 KiB segments; "other" shares none of them.
    std::mt19937 rng(7);
    std::vector<std::vector<char>> pool(24, std::vector<char>(k64K));
    for (auto& seg : pool) {
      for (auto& c : seg) c = static_cast<char>(rng());
    }
    auto image = [&](const std::string& name, int first, int count, int tail) {
      const std::string path = dir_ + "/" + name + ".img";
      std::ofstream out(path, std::ios::binary);
      for (int i = 0; i < 40; ++i) out.write(pool[first + rng() % count].data(), k64K);
      out.write(pool[first].data(), tail);  // unaligned tail
      images_[name] = path;
    };
    image("v1", 0, 12, 1000);
    image("v2", 2, 12, 3333);
    image("other", 16, 8, 4096 + 17);
    {  // 24 distinct random chunks: no key repeats
      std::ofstream out(dir_ + "/solo.img", std::ios::binary);
      std::vector<char> seg(k64K);
      for (int i = 0; i < 24; ++i) {
        for (auto& c : seg) c = static_cast<char>(rng());
        out.write(seg.data(), k64K);
      }
      images_["solo"] = dir_ + "/solo.img";
    }
    for (const auto& [id, path] : images_) {
      // Random bytes, not EROFS images: imported as raw blobs.
      ASSERT_EQ(
          Lazyblob("import " + path + " --id " + id + " --force --chunker fixed --avg-chunk 64K"),
          0);
    }
  }
  void TearDown() override {
    nodes_.clear();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Runs the real lazyblob on the source store; its exit status.
  int Lazyblob(const std::string& args) {
    const std::string cmd = std::string(LAZYBLOB_BIN) + " --store " + dir_ + "/src " + args +
                            " >>" + dir_ + "/lazyblob.log 2>&1";
    const int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::string Registry(const std::string& host_env = "LB_REG_PLAIN") {
    return "http://" + testing::Env(host_env.c_str()) + "/" + repo_;
  }
  void Push(const std::string& ids) {
    ASSERT_EQ(Lazyblob("push --registry " + Registry() + " " + ids), 0);
  }
  // The distinct chunk keys of blobs `ids` in the source store.
  std::set<ChunkKey> Keys(const std::vector<std::string>& ids) {
    ChunkStoreOptions o;
    o.path = dir_ + "/src";
    auto store = ChunkStore::Open(o);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    std::set<ChunkKey> keys;
    for (const std::string& id : ids) {
      auto blob = (*store)->OpenBlob(id);
      EXPECT_TRUE(blob.ok());
      for (const ChunkExtent& e : blob->map->extents) keys.insert(e.key);
    }
    return keys;
  }
  OriginNode& Node(const std::string& origin, std::vector<std::string> extra = {},
                   const std::string& name = "") {
    const std::string n = name.empty() ? "node" + std::to_string(nodes_.size()) : name;
    auto node = std::make_unique<OriginNode>(dir_ + "/" + n, origin, std::move(extra));
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  std::string dir_, repo_;
  std::map<std::string, std::string> images_;
  std::vector<std::unique_ptr<OriginNode>> nodes_;
};

TEST_F(LazyblobdOrigin, EveryByteOfEveryImageIsServedFromTheRegistry) {
  Push("v1 v2 other solo");
  OriginNode& node = Node(Registry());
  ASSERT_TRUE(node.Start());
  std::vector<std::thread> readers;
  std::atomic<int> failed{0};
  std::vector<SimMount> mounts;
  for (const auto& [id, path] : images_) mounts.push_back(node.Mount(id, path));
  for (std::size_t t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] { failed += node.ReadAll(mounts[t % 4], t % 2 ? 4096 : 100000); });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0);
  node.ExpectCleanReads();
  const std::string m = node.Settled();
  EXPECT_EQ(Sample(m, "lazyblob_origin_requests_total", {"op=\"resolve\"", "result=\"ok\""}), 4);
  EXPECT_EQ(Sample(m, "lazyblob_origin_chunks_total", {"result=\"rejected\""}), 0);
  EXPECT_GT(Sample(m, "lazyblob_origin_requests_total", {"op=\"range\"", "result=\"ok\""}), 0);
  // Every lazyblob_origin_* series the Grafana dashboard queries is exported by this daemon.
  std::ifstream in(std::filesystem::path(__FILE__).parent_path() /
                   "../../docs/grafana-dashboard.json");
  const std::string dashboard((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
  ASSERT_FALSE(dashboard.empty());
  int names = 0;
  for (std::size_t pos = dashboard.find("lazyblob_origin_"); pos != std::string::npos;
       pos = dashboard.find("lazyblob_origin_", pos + 1)) {
    std::size_t end = pos;
    while (end < dashboard.size() &&
           (std::isalnum(static_cast<unsigned char>(dashboard[end])) || dashboard[end] == '_')) {
      ++end;
    }
    const std::string name = dashboard.substr(pos, end - pos);
    ++names;
    EXPECT_NE(m.find("\n" + name), std::string::npos) << name << " is not exported";
  }
  EXPECT_GT(names, 10);
}

// Three nodes with empty stores and caches read the same images from one registry at once.
// Each fetches every chunk exactly once (its lazyblob_origin_chunks_total{result="fetched"}
// equals the images' distinct chunks), whatever the readers' concurrency.
TEST_F(LazyblobdOrigin, ThreeNodesEachFetchEveryChunkOnce) {
  Push("v1 v2 other");
  const std::size_t distinct = Keys({"v1", "v2", "other"}).size();
  for (int n = 0; n < 3; ++n) ASSERT_TRUE(Node(Registry()).Start());
  std::vector<std::thread> readers;
  std::atomic<int> failed{0};
  for (auto& node : nodes_) {
    std::vector<SimMount> mounts;
    for (const std::string id : {"v1", "v2", "other"})
      mounts.push_back(node->Mount(id, images_[id]));
    for (std::size_t t = 0; t < 6; ++t) {
      readers.emplace_back([&, mounts, n = node.get(), t] {
        failed += n->ReadAll(mounts[t % 3], t < 3 ? 4096 : 131072);
      });
    }
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0);
  for (auto& node : nodes_) {
    node->ExpectCleanReads();
    const std::string m = node->Settled();
    EXPECT_EQ(Sample(m, "lazyblob_origin_chunks_total", {"result=\"fetched\""}), distinct)
        << node->dir();
    std::printf("node %s: %g range GETs, %g chunks fetched (%zu distinct), %g joins\n",
                node->dir().c_str(), Sample(m, "lazyblob_origin_requests_total", {"op=\"range\""}),
                Sample(m, "lazyblob_origin_chunks_total", {"result=\"fetched\""}), distinct,
                Sample(m, "lazyblob_origin_singleflight_joins_total", {}));
  }
}

// A node that already holds v1 (fetched earlier, or pulled into its own store) fetches for
// v2 only the chunks v1 lacks.
TEST_F(LazyblobdOrigin, ANodeHoldingV1FetchesOnlyWhatV2Adds) {
  Push("v1 v2");
  const std::set<ChunkKey> v1 = Keys({"v1"}), v2 = Keys({"v2"});
  std::size_t added = 0;
  for (const ChunkKey& k : v2) added += v1.count(k) == 0;
  ASSERT_GT(added, 0u);
  ASSERT_LT(added, v2.size());

  OriginNode& cached = Node(Registry());
  ASSERT_TRUE(cached.Start());
  EXPECT_EQ(cached.ReadAll(cached.Mount("v1", images_["v1"]), 65536), 0);
  EXPECT_EQ(Sample(cached.Settled(), "lazyblob_origin_chunks_total", {"result=\"fetched\""}),
            v1.size());
  EXPECT_EQ(cached.ReadAll(cached.Mount("v2", images_["v2"]), 65536), 0);
  EXPECT_EQ(Sample(cached.Settled(), "lazyblob_origin_chunks_total", {"result=\"fetched\""}),
            v1.size() + added);
  cached.ExpectCleanReads();

  // v1 pulled into the node's own store beforehand: v2's other chunks come from there.
  const std::string store = dir_ + "/pulled-store";
  const std::string pull = std::string(LAZYBLOB_BIN) + " --store " + store + " pull --registry " +
                           Registry() + " v1 >/dev/null 2>&1";
  ASSERT_EQ(std::system(pull.c_str()), 0);
  OriginNode& pulled = Node(Registry(), {"--store", store});
  ASSERT_TRUE(pulled.Start());
  EXPECT_EQ(pulled.ReadAll(pulled.Mount("v2", images_["v2"]), 65536), 0);
  const std::string m = pulled.Settled();
  EXPECT_EQ(Sample(m, "lazyblob_origin_chunks_total", {"result=\"fetched\""}), added);
  EXPECT_GT(Sample(m, "lazyblob_origin_chunk_reads_total", {"source=\"local\""}), 0);
  pulled.ExpectCleanReads();
}

// Fetched chunks and resolved maps stay: a restarted daemon serves everything with the
// registry unreachable, and fetches nothing.
TEST_F(LazyblobdOrigin, ARestartedDaemonNeedsNoRegistryForWhatItFetched) {
  Push("v1 other");
  OriginNode& node = Node(Registry("LB_PROXY_SWITCH"));
  ASSERT_TRUE(node.Start());
  EXPECT_EQ(node.ReadAll(node.Mount("v1", images_["v1"]), 131072), 0);
  EXPECT_EQ(node.ReadAll(node.Mount("other", images_["other"]), 131072), 0);
  node.Stop();
  testing::SwitchDown(true);
  OriginNode& again = Node(Registry("LB_PROXY_SWITCH"), {}, "node0-again");
  again.ReuseCacheOf(node);
  ASSERT_TRUE(again.Start());
  EXPECT_EQ(again.ReadAll(again.Mount("v1", images_["v1"]), 4096), 0);
  EXPECT_EQ(again.ReadAll(again.Mount("other", images_["other"]), 4096), 0);
  testing::SwitchDown(false);
  again.ExpectCleanReads();
  const std::string m = again.Scrape();
  EXPECT_EQ(Sample(m, "lazyblob_origin_requests_total", {}), 0);
  EXPECT_EQ(Sample(m, "lazyblob_origin_kept_map_opens_total", {}), 2);
  EXPECT_GT(Sample(m, "lazyblob_origin_chunk_reads_total", {"source=\"cache\""}), 0);
}

// kill -9 of the worker while it fetches (through a slow link): readers see no error (the
// restarted worker re-serves their READs), and the origin cache then verifies clean: a
// kill -9 loses at most what was not yet committed.
TEST_F(LazyblobdOrigin, KillNineMidFetchCostsReadersNothingAndTheCacheVerifies) {
  Push("v1 v2");
  OriginNode& node = Node(Registry("LB_PROXY_SLOW"), {"--write-ahead", "0"});
  ASSERT_TRUE(node.Start());
  std::vector<SimMount> mounts = {node.Mount("v1", images_["v1"]), node.Mount("v2", images_["v2"])};
  const pid_t worker = node.WorkerPid();
  ASSERT_GT(worker, 0);
  std::atomic<int> failed{0}, done{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      failed += node.ReadAll(mounts[t], 65536);
      ++done;
    });
  }
  while (node.sim().counters().reads_sent < 8 && done.load() < 2) ::usleep(1000);
  ASSERT_LT(done.load(), 2) << "readers finished before the kill";
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GE(node.sim().counters().restores, 1u);
  node.ExpectCleanReads();
  node.Stop();
  const std::string verify =
      std::string(LAZYBLOB_BIN) + " --store " + node.dir() + "/origin/store verify >/dev/null 2>&1";
  EXPECT_EQ(std::system(verify.c_str()), 0);
  ChunkStoreOptions o;
  o.path = node.dir() + "/origin/store";
  auto cache = ChunkStore::Open(o);
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  // A chunk the killed worker had written to the cache file but not yet committed to the
  // origin cache (commits are batched behind the READs, origin_cache.h) is not in it: the
  // kernel's cache file holds it, so no READ asks for it again. Everything else is.
  const auto keys = Keys({"v1", "v2"});
  std::size_t missing = 0;
  for (const ChunkKey& k : keys) missing += !(*cache)->HasChunk(k).value();
  std::printf("origin cache after kill -9: %zu of %zu chunks, %zu lost with the worker\n",
              keys.size() - missing, keys.size(), missing);
}

// The registry stops mid-read: READs of chunks not held fail (EIO) within the configured
// bound, chunks already fetched keep being served, and once the registry is back the same
// daemon serves the rest.
TEST_F(LazyblobdOrigin, RegistryDownMeansBoundedEioThenRecoversWithoutRestart) {
  Push("v1 other");
  OriginNode& node = Node(Registry("LB_PROXY_SWITCH"),
                          {"--origin-timeout", "1", "--origin-retries", "1", "--write-ahead", "0"});
  ASSERT_TRUE(node.Start());
  SimMount v1 = node.Mount("v1", images_["v1"]);
  SimMount other = node.Mount("other", images_["other"]);
  EXPECT_EQ(node.ReadAll(v1, 65536), 0);  // v1 fetched; "other" resolved but not read
  for (const char* mode : {"", "hang"}) {
    testing::SwitchDown(true, mode);
    std::vector<std::byte> buf(65536);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = node.sim().Read(other, 0, buf);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_FALSE(r.ok()) << mode;
    // 2 attempts of at most 1 s plus backoff; far below the simulator's 60 s guard.
    EXPECT_LT(seconds, 10.0) << mode;
    std::printf("registry down (%s): READ failed after %.2f s\n", *mode ? mode : "refused",
                seconds);
    EXPECT_EQ(node.ReadAll(v1, 4096), 0) << "fetched chunks must keep being served";
    testing::SwitchDown(false);
  }
  EXPECT_EQ(node.ReadAll(other, 65536), 0);
  const std::string m = node.Scrape();
  EXPECT_GE(Sample(m, "lazyblob_origin_requests_total", {"op=\"range\"", "result=\"error\""}), 2);
  EXPECT_EQ(node.sim().counters().data_mismatches, 0u);
}

// A byte flipped in transit (the proxy flips the middle byte of every ranged answer): the
// chunk it lands in fails its hash and is refused alone, while its neighbours in the same
// coalesced request are served and kept; it is never written to the cache file nor to the
// origin cache, only its range fails, and it is counted.
TEST_F(LazyblobdOrigin, AFlippedByteCostsOnlyItsChunk) {
  Push("solo");
  OriginNode& node = Node(Registry("LB_PROXY_FLIP"));
  ASSERT_TRUE(node.Start());
  SimMount m = node.Mount("solo", images_["solo"]);
  std::vector<std::byte> buf(4096);
  // Chunk 0 is fetched alone (its middle byte is flipped: EIO); its 1 MiB write-ahead
  // window, chunks 1..16, follows in one coalesced Range GET whose middle byte is flipped.
  EXPECT_FALSE(node.sim().Read(m, 0, buf).ok());
  const std::string first = node.Settled();
  EXPECT_GE(Sample(first, "lazyblob_origin_chunks_per_request_sum", {}), 17);
  EXPECT_GT(Sample(first, "lazyblob_origin_chunks_per_request_sum", {}),
            Sample(first, "lazyblob_origin_chunks_per_request_count", {}))
      << "the write-ahead window was not coalesced";
  std::vector<std::uint64_t> failed;
  std::vector<std::byte> chunk(k64K);
  for (std::uint64_t off = k64K; off <= 16 * k64K; off += k64K) {
    if (!node.sim().Read(m, off, chunk).ok()) failed.push_back(off);
  }
  ASSERT_EQ(failed.size(), 1u) << "only the chunk holding the flipped byte may fail";
  EXPECT_FALSE(node.CacheFileHasData(failed[0], k64K)) << "refused bytes reached the cache file";
  EXPECT_EQ(node.sim().counters().data_mismatches, 0u);
  const std::string metrics = node.Settled();  // windows run after their READs
  // Each ranged answer has one flipped byte: one refused chunk per request, the others kept.
  const double rejected = Sample(metrics, "lazyblob_origin_chunks_total", {"result=\"rejected\""});
  const double fetched = Sample(metrics, "lazyblob_origin_chunks_total", {"result=\"fetched\""});
  EXPECT_EQ(rejected, Sample(metrics, "lazyblob_origin_requests_total", {"op=\"range\""}));
  EXPECT_EQ(rejected, Sample(metrics, "lazyblob_origin_requests_total", {"result=\"corrupt\""}));
  EXPECT_EQ(fetched + rejected, Sample(metrics, "lazyblob_origin_chunks_per_request_sum", {}));
  EXPECT_GE(fetched, 15);
  EXPECT_FALSE(node.CacheFileHasData(0, k64K)) << "refused bytes reached the cache file";
  EXPECT_TRUE(node.LogHas("refused")) << node.Log();
  node.Stop();
  ChunkStoreOptions o;
  o.path = node.dir() + "/origin/store";
  auto cache = ChunkStore::Open(o);
  ASSERT_TRUE(cache.ok());
  auto stats = (*cache)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunks, static_cast<std::uint64_t>(fetched));
  auto verify = (*cache)->Verify();
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->clean());
}

// The origin cache stays within --origin-cache-size: a 24 MiB incompressible image read
// through a 16 MiB cache evicts the oldest packs (chunks being read are carried forward),
// every byte still right, the cache verifies afterwards.
TEST_F(LazyblobdOrigin, TheOriginCacheIsBoundedByEviction) {
  {
    std::mt19937_64 rng(11);
    std::ofstream out(dir_ + "/large.img", std::ios::binary);
    std::vector<std::uint64_t> block(k64K / 8);
    for (int i = 0; i < 24 * 16; ++i) {
      for (auto& w : block) w = rng();
      out.write(reinterpret_cast<const char*>(block.data()), k64K);
    }
  }
  ASSERT_EQ(
      Lazyblob("import " + dir_ + "/large.img --id large --force --chunker fixed --avg-chunk 64K"),
      0);
  Push("large");
  OriginNode& node = Node(Registry(), {"--origin-cache-size", "16M"});
  ASSERT_TRUE(node.Start());
  std::vector<std::thread> readers;
  std::atomic<int> failed{0};
  SimMount m = node.Mount("large", dir_ + "/large.img");
  for (std::size_t t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] { failed += node.ReadAll(m, t == 0 ? 131072 : 4096); });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0);
  node.ExpectCleanReads();
  const std::string metrics = node.Scrape();
  EXPECT_GT(Sample(metrics, "lazyblob_origin_evicted_chunks_total", {}), 0) << node.Log();
  EXPECT_LE(Sample(metrics, "lazyblob_origin_cache_bytes", {}), 16 << 20) << node.Log();
  EXPECT_EQ(Sample(metrics, "lazyblob_origin_cache_limit_bytes", {}), 16 << 20);
  node.Stop();
  const std::string verify =
      std::string(LAZYBLOB_BIN) + " --store " + node.dir() + "/origin/store verify >/dev/null 2>&1";
  EXPECT_EQ(std::system(verify.c_str()), 0);
  std::uintmax_t packs = 0;
  for (const auto& e : std::filesystem::directory_iterator(node.dir() + "/origin/store/packs")) {
    packs += e.file_size();
  }
  EXPECT_LE(packs, 16u << 20);
}

// --prefetch works against the origin: after the mount's first READ (EROFS reads its
// superblock; prefetch writes only once a READ proved the cache file attached), the whole
// blob is fetched and written in the background (each chunk once), so the reader then
// sends no READ at all.
TEST_F(LazyblobdOrigin, PrefetchFetchesTheWholeBlobInTheBackground) {
  Push("solo");
  OriginNode& node = Node(Registry(), {"--prefetch"});
  ASSERT_TRUE(node.Start());
  SimMount m = node.Mount("solo", images_["solo"]);
  std::vector<std::byte> superblock(4096);
  ASSERT_TRUE(node.sim().Read(m, 0, superblock).ok());
  std::string metrics;
  for (int i = 0; i < 1000; ++i, ::usleep(20'000)) {
    metrics = node.Scrape();
    if (Sample(metrics, "lazyblob_origin_chunks_total", {"result=\"fetched\""}) >= 24 &&
        node.CacheFileHasData(23 * k64K, k64K)) {
      break;
    }
  }
  EXPECT_EQ(Sample(node.Settled(), "lazyblob_origin_chunks_total", {"result=\"fetched\""}), 24);
  const std::uint64_t reads_before = node.sim().counters().reads_sent;
  EXPECT_EQ(node.ReadAll(m, 65536), 0);
  EXPECT_EQ(node.sim().counters().reads_sent, reads_before) << "a prefetched blob needs no READ";
  node.ExpectCleanReads();
}

// HTTPS with a private CA (--origin-ca-file), and HTTP Basic credentials from a docker
// config.json (--origin-auth-file): both serve every byte.
TEST_F(LazyblobdOrigin, TlsWithAPrivateCaAndBasicAuthServeEveryByte) {
  const std::string tls = testing::Env("LB_REG_TLS") + "/" + repo_;
  ASSERT_EQ(Lazyblob("push --registry " + tls + " --ca-file " + testing::Env("LB_REG_CA") + " v1"),
            0);
  const std::string auth = "http://" + testing::Env("LB_REG_AUTH") + "/" + repo_;
  ASSERT_EQ(Lazyblob("push --registry " + auth + " --auth-file " +
                     testing::Env("LB_REG_AUTH_FILE") + " v1"),
            0);
  OriginNode& secure = Node(tls, {"--origin-ca-file", testing::Env("LB_REG_CA")});
  OriginNode& basic = Node(auth, {"--origin-auth-file", testing::Env("LB_REG_AUTH_FILE")});
  for (OriginNode* node : {&secure, &basic}) {
    ASSERT_TRUE(node->Start());
    EXPECT_EQ(node->ReadAll(node->Mount("v1", images_["v1"]), 65536), 0);
    node->ExpectCleanReads();
  }
  // Without the CA, the certificate does not verify: the OPEN fails, counted as denied.
  OriginNode& untrusted = Node(tls);
  ASSERT_TRUE(untrusted.Start());
  EXPECT_FALSE(untrusted.sim().Mount("erofs,d", "v1").ok());
  EXPECT_EQ(Sample(untrusted.Scrape(), "lazyblob_origin_requests_total",
                   {"op=\"resolve\"", "result=\"denied\""}),
            1);
}

TEST_F(LazyblobdOrigin, AServerIgnoringRangeIsServedCorrectly) {
  Push("v1");
  OriginNode& node = Node(Registry("LB_PROXY_NORANGE"));
  ASSERT_TRUE(node.Start());
  EXPECT_EQ(node.ReadAll(node.Mount("v1", images_["v1"]), 65536), 0);
  node.ExpectCleanReads();
  EXPECT_GT(Sample(node.Scrape(), "lazyblob_origin_range_ignored_total", {}), 0);
}

// A blob whose bundle is gone (404), wrong credentials (401) and a malformed manifest each
// give one clear error line and a metric; the daemon serves everything else meanwhile.
TEST_F(LazyblobdOrigin, RegistryErrorsAreClearAndTheDaemonServesOn) {
  Push("v1");
  Push("other");  // its own bundle: deleting it leaves v1 whole
  ASSERT_TRUE(testing::DeleteBundleOf(Registry(), "other"));
  ASSERT_TRUE(testing::PutMalformedManifest(Registry(), "lb-broken"));
  OriginNode& node = Node(Registry());
  ASSERT_TRUE(node.Start());
  SimMount broken = node.Mount("other", images_["other"]);
  EXPECT_EQ(node.ReadAll(broken, 65536), static_cast<int>((broken.size + 65535) / 65536));
  EXPECT_FALSE(node.sim().Mount("erofs,d", "broken").ok());
  EXPECT_EQ(node.ReadAll(node.Mount("v1", images_["v1"]), 65536), 0);
  const std::string m = node.Scrape();
  EXPECT_GE(Sample(m, "lazyblob_origin_requests_total", {"op=\"range\"", "result=\"not_found\""}),
            1);
  EXPECT_EQ(Sample(m, "lazyblob_origin_requests_total", {"op=\"resolve\"", "result=\"malformed\""}),
            1);
  EXPECT_TRUE(node.LogHas("HTTP 404")) << node.Log();
  EXPECT_TRUE(node.LogHas("blob 'broken'")) << node.Log();

  OriginNode& denied = Node("http://" + testing::Env("LB_REG_AUTH") + "/" + repo_,
                            {"--origin-auth-file", testing::Env("LB_REG_BADAUTH_FILE")});
  ASSERT_TRUE(denied.Start());
  EXPECT_FALSE(denied.sim().Mount("erofs,d", "v1").ok());
  EXPECT_EQ(Sample(denied.Scrape(), "lazyblob_origin_requests_total",
                   {"op=\"resolve\"", "result=\"denied\""}),
            1);
  EXPECT_TRUE(denied.LogHas("HTTP 401")) << denied.Log();
  // Neither the credential as sent (base64 "user:password") nor the password appear.
  std::ifstream auth_in(testing::Env("LB_REG_BADAUTH_FILE"));
  const auto auth = nlohmann::json::parse(auth_in);
  const std::string basic = auth["auths"].begin().value()["auth"];
  const std::string user_password = testing::Output("printf %s " + basic + " | base64 -d");
  const std::string password = user_password.substr(user_password.find(':') + 1);
  ASSERT_GT(password.size(), 4u);
  EXPECT_FALSE(denied.LogHas(basic)) << "a credential in the log";
  EXPECT_FALSE(denied.LogHas(password)) << "a password in the log";
  EXPECT_EQ(denied.Scrape().find(password), std::string::npos) << "a password in the metrics";
}

// Issue 16: a start recorded on one node (its own store), published by `lazyblob push`, is
// replayed by a second node with an empty store and origin cache: the start's reads find
// their ranges written, so the (simulated) kernel sends no READ for them.
TEST_F(LazyblobdOrigin, RecordedStartReplayedOnASecondNodeTurnsItsReadsIntoHits) {
  Push("solo");
  // Chunks, in order; the first is the mount's own READ (EROFS reads its superblock).
  const std::vector<std::uint64_t> start = {0, 5, 17, 2, 11, 20, 8, 14};
  std::vector<std::byte> page(4096);
  {
    OriginNode& first = Node(
        Registry(), {"--store", dir_ + "/src", "--trace-record", "600", "--write-ahead", "64K"});
    first.set_max_readahead(4096);
    ASSERT_TRUE(first.Start());
    SimMount m = first.Mount("solo", images_["solo"]);
    for (std::uint64_t c : start) ASSERT_TRUE(first.sim().Read(m, c * k64K, page).ok());
    ASSERT_TRUE(first.sim().Unmount(m).ok());  // CLOSE: the record is saved
    for (int i = 0; i < 500 && Sample(first.Scrape(), "lazyblob_traces_recorded_total", {}) < 1;
         ++i) {
      ::usleep(10'000);
    }
    EXPECT_EQ(Sample(first.Scrape(), "lazyblob_traces_recorded_total", {}), 1) << first.Log();
    first.Stop();
  }
  // The record: the start's reads in order, with the chunks written ahead of them (the
  // kernel never asks for those, so they stand for the start's later reads of them).
  const std::string shown = testing::Output(std::string(LAZYBLOB_BIN) + " --store " + dir_ +
                                            "/src trace show solo --json");
  const auto record = nlohmann::json::parse(shown, nullptr, false);
  ASSERT_FALSE(record.is_discarded()) << shown;
  const auto recorded = record["offsets"].get<std::vector<std::uint64_t>>();
  ASSERT_FALSE(recorded.empty());
  EXPECT_EQ(recorded[0], start[0] * k64K);
  EXPECT_LT(recorded.size(), 24u) << "not the whole blob";
  for (std::uint64_t c : start) {
    EXPECT_NE(std::find(recorded.begin(), recorded.end(), c * k64K), recorded.end()) << c;
  }
  Push("solo");  // the blob is there already: this publishes the record

  // No write-ahead on the second node: what it fetches is the record's doing alone.
  OriginNode& second = Node(Registry(), {"--write-ahead", "0"});
  second.set_max_readahead(4096);
  ASSERT_TRUE(second.Start());
  SimMount m = second.Mount("solo", images_["solo"]);
  // The mount's READ: it proves the cache file attached, and replay starts writing.
  ASSERT_TRUE(second.sim().Read(m, start[0] * k64K, page).ok());
  for (int i = 0; i < 3000 && Sample(second.Scrape(), "lazyblob_replays_total", {}) < 1; ++i) {
    ::usleep(10'000);
  }
  ASSERT_EQ(Sample(second.Scrape(), "lazyblob_replays_total", {}), 1) << second.Log();
  const std::uint64_t reads_before = second.sim().counters().reads_sent;
  for (std::size_t k = 1; k < start.size(); ++k) {
    ASSERT_TRUE(second.sim().Read(m, start[k] * k64K, page).ok()) << start[k] << "\n"
                                                                  << second.Log();
  }
  const std::uint64_t reads = second.sim().counters().reads_sent - reads_before;
  const double hit_fraction = 1.0 - static_cast<double>(reads) / (start.size() - 1);
  EXPECT_GE(hit_fraction, 0.95) << reads << " of " << start.size() - 1 << " reads missed";
  const std::string metrics = second.Scrape();
  EXPECT_EQ(Sample(metrics, "lazyblob_prefetch_bytes_total", {}), (recorded.size() - 1) * k64K)
      << "replay wrote the record but the chunk the mount's READ had written";
  EXPECT_EQ(Sample(metrics, "lazyblob_origin_chunks_total", {"result=\"fetched\""}),
            recorded.size())
      << "replay fetched exactly the recorded chunks, the start's reads nothing more";
  std::printf("start of %zu reads: %zu chunks recorded, hit fraction %.2f after the first\n",
              start.size(), recorded.size(), hit_fraction);
  second.ExpectCleanReads();
}

// Issue 16: replay through a slow link, bounded to 64 KiB/s (8 chunks: over 7 s), never
// delays a demand READ elsewhere: the READ is answered while replay has most of the record
// still to write.
TEST_F(LazyblobdOrigin, DemandReadElsewhereIsServedWhileAReplayRuns) {
  Push("solo");
  {
    OriginNode& first = Node(Registry(), {"--store", dir_ + "/src", "--trace-record", "600",
                                          "--write-ahead", "0"});  // a record of 8 chunks
    first.set_max_readahead(4096);
    ASSERT_TRUE(first.Start());
    SimMount m = first.Mount("solo", images_["solo"]);
    std::vector<std::byte> page(4096);
    for (std::uint64_t c = 0; c < 16; c += 2) ASSERT_TRUE(first.sim().Read(m, c * k64K, page).ok());
    ASSERT_TRUE(first.sim().Unmount(m).ok());
    for (int i = 0; i < 500 && Sample(first.Scrape(), "lazyblob_traces_recorded_total", {}) < 1;
         ++i) {
      ::usleep(10'000);
    }
    first.Stop();
  }
  Push("solo");
  OriginNode& node =
      Node(Registry("LB_PROXY_SLOW"), {"--trace-replay-bandwidth", "64K", "--write-ahead", "0"});
  node.set_max_readahead(4096);
  ASSERT_TRUE(node.Start());
  SimMount m = node.Mount("solo", images_["solo"]);
  std::vector<std::byte> page(4096);
  ASSERT_TRUE(node.sim().Read(m, 21 * k64K, page).ok());  // off the record
  const std::string metrics = node.Scrape();
  EXPECT_EQ(Sample(metrics, "lazyblob_replays_total", {}), 0) << "the replay had not ended";
  EXPECT_LT(Sample(metrics, "lazyblob_prefetch_bytes_total", {}), 8 * k64K);
  node.ExpectCleanReads();
}

}  // namespace
}  // namespace lazyblob

#endif  // LAZYBLOBD_BIN && LAZYBLOB_BIN
