// The fanotify front end end to end on this machine's kernel: real stores made by
// `lazyblob import`, the real lazyblobd (supervisor + worker, --frontend fanotify), EROFS
// file-backed mounts made by `lazyblob mount`, every file checked by SHA-256. Each test
// runs in its own private mount namespace and skips with one line when the kernel, the
// user or mkfs.erofs cannot run it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <random>

#include "tests/native/fanotify_daemon_util.h"

namespace lazyblob {
namespace {

using fanotify_test::CompareTreesBySha256;
using fanotify_test::FanotifyDaemon;
using fanotify_test::MakeErofs;
using fanotify_test::TempDir;

class FanotifyDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = fanotify_test::KernelSkipReason();
    if (!why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(fanotify_test::EnterPrivateMountNamespace().ok());
    daemon_ = std::make_unique<FanotifyDaemon>(dir_.path());
  }
  void TearDown() override {
    if (daemon_ != nullptr) {
      // A worker that crashed (a sanitizer report, an abort) is restarted by the supervisor
      // and could go unnoticed by the checks above.
      const std::string log = daemon_->log();
      EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log;
      EXPECT_EQ(log.find(" died ("), std::string::npos) << log;
      daemon_->Kill();
    }
    // Mounts left by a failed test, so that the scratch dir can be removed.
    if (dir_.path().empty()) return;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
      if (e.path().filename().string().rfind("mnt", 0) == 0) {
        ::umount2(e.path().c_str(), MNT_DETACH);
      }
    }
  }
  // A generated tree with `big` extra files of random bytes of `big_bytes` each.
  std::string Tree(const std::string& name, std::uint64_t seed, int big = 0,
                   std::size_t big_bytes = 0) {
    const std::string root = dir_ / name;
    erofs_test::MakeTree(root, seed);
    for (int i = 0; i < big; ++i) {
      erofs_test::WriteFile(root + "/big" + std::to_string(i),
                            erofs_test::PatternBytes(big_bytes, seed * 100 + i));
    }
    return root;
  }
  void ExpectSameTree(const std::string& tree, const std::string& mnt) {
    std::size_t files = 0;
    const auto bad = CompareTreesBySha256(tree, mnt, &files);
    EXPECT_GT(files, 300u);
    EXPECT_TRUE(bad.empty()) << bad.size() << " of " << files << " files differ, first "
                             << bad.front();
  }
  // A mount's root has another device than its parent directory.
  static bool Mounted(const std::string& dir) {
    struct stat here {
    }, up{};
    return ::stat(dir.c_str(), &here) == 0 && ::stat((dir + "/..").c_str(), &up) == 0 &&
           here.st_dev != up.st_dev;
  }

  TempDir dir_{"fandaemon"};
  std::unique_ptr<FanotifyDaemon> daemon_;
};

TEST_F(FanotifyDaemonTest, EveryFileOfImagesInSeveralLayoutsMatchesItsSha256) {
  struct Layout {
    const char* name;
    std::vector<std::string> args;
  };
  const Layout layouts[] = {{"flat_plain", {"-Enoinline_data"}},
                            {"flat_inline", {}},
                            {"chunked", {"--chunksize=65536"}},
                            {"lz4hc", {"-zlz4hc"}}};
  std::vector<std::string> trees;
  for (std::size_t i = 0; i < std::size(layouts); ++i) {
    trees.push_back(Tree(std::string("tree-") + layouts[i].name, 20 + i, 2, 3 << 20));
    const std::string image = dir_ / (std::string(layouts[i].name) + ".erofs");
    ASSERT_TRUE(MakeErofs(image, trees.back(), layouts[i].args)) << layouts[i].name;
    daemon_->Import(image, layouts[i].name);
  }
  daemon_->Start();
  for (const Layout& l : layouts) {
    auto r = daemon_->Mount(l.name, dir_ / (std::string("mnt-") + l.name));
    ASSERT_EQ(r.code, 0) << l.name << ": " << r.err;
  }
  for (std::size_t i = 0; i < std::size(layouts); ++i) {
    SCOPED_TRACE(layouts[i].name);
    ExpectSameTree(trees[i], dir_ / (std::string("mnt-") + layouts[i].name));
  }
  for (const Layout& l : layouts) {
    auto r = daemon_->Umount(dir_ / (std::string("mnt-") + l.name));
    EXPECT_EQ(r.code, 0) << r.err;
  }
  EXPECT_GT(daemon_->Metric("lazyblob_requests_total", {R"(op="read")", R"(frontend="fanotify")"}),
            0);
  EXPECT_EQ(daemon_->Metric("lazyblob_requests_total", {R"(result="error")"}), 0);
  EXPECT_EQ(daemon_->Stop(), 0);
}

TEST_F(FanotifyDaemonTest, RandomRangesAcrossChunkBoundariesReadTheImagesBytes) {
  const std::string tree = Tree("tree", 3, 1, 12 << 20);
  const std::string image = dir_ / "image.erofs";
  ASSERT_TRUE(MakeErofs(image, tree, {"-Enoinline_data"}));
  // Small CDC chunks: many chunk boundaries inside every read.
  daemon_->Import(image, "img", {"--avg-chunk", "16K", "--min-chunk", "4K", "--max-chunk", "64K"});
  daemon_->Start({"--write-ahead", "0"});
  ASSERT_EQ(daemon_->Mount("img", dir_ / "mnt").code, 0);
  const std::string truth = erofs_test::ReadFile(tree + "/big0");
  const std::string mounted = dir_ / "mnt/big0";
  std::mt19937_64 rng(5);
  int bad = 0;
  for (int i = 0; i < 400; ++i) {
    const std::size_t len = 1 + rng() % (300 * 1024);
    const std::size_t off = rng() % (truth.size() - len);
    UniqueFd fd(::open(mounted.c_str(), O_RDONLY | O_CLOEXEC));
    std::string got(len, '\0');
    const ssize_t n = ::pread(fd.get(), got.data(), len, static_cast<off_t>(off));
    if (n != static_cast<ssize_t>(len) || got != truth.substr(off, len)) {
      if (++bad <= 3)
        ADD_FAILURE() << "read of " << len << " bytes at " << off << " returned " << n;
    }
    // Drop the mounted file's pages now and then so later reads reach the daemon again.
    if (i % 50 == 49) ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
  }
  EXPECT_EQ(bad, 0);
  ExpectSameTree(tree, dir_ / "mnt");
}

TEST_F(FanotifyDaemonTest, TwoImagesSharingChunksAreServedFromOneStore) {
  const std::string a = Tree("a", 7, 2, 2 << 20);
  // b: a's files plus one changed and one new: most chunks are a's.
  const std::string b = dir_ / "b";
  std::filesystem::copy(
      a, b,
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks);
  erofs_test::WriteFile(b + "/f5", erofs_test::PatternBytes(70000, 999));
  erofs_test::WriteFile(b + "/new", erofs_test::PatternBytes(100000, 1000));
  ASSERT_TRUE(MakeErofs(dir_ / "a.erofs", a, {"-Enoinline_data"}));
  ASSERT_TRUE(MakeErofs(dir_ / "b.erofs", b, {"-Enoinline_data"}));
  daemon_->Import(dir_ / "a.erofs", "a");
  daemon_->Import(dir_ / "b.erofs", "b");
  auto stat = daemon_->Lazyblob({"--store", daemon_->store(), "stat", "--json"});
  ASSERT_EQ(stat.code, 0);
  const auto doc = nlohmann::json::parse(stat.out);
  EXPECT_GT(doc["dedup_ratio"].get<double>(), 1.3) << stat.out;
  daemon_->Start();
  ASSERT_EQ(daemon_->Mount("a", dir_ / "mnt-a").code, 0);
  ASSERT_EQ(daemon_->Mount("b", dir_ / "mnt-b").code, 0);
  ExpectSameTree(a, dir_ / "mnt-a");
  ExpectSameTree(b, dir_ / "mnt-b");
  // b's reads of chunks a already loaded come from the decompressed-chunk cache.
  EXPECT_GT(daemon_->Metric("lazyblob_chunk_lookups_total", {R"(result="cache_hit")"}), 0);
}

TEST_F(FanotifyDaemonTest, AnUnknownIdFailsTheMountWithAClearError) {
  const std::string tree = Tree("tree", 1);
  ASSERT_TRUE(MakeErofs(dir_ / "x.erofs", tree));
  daemon_->Import(dir_ / "x.erofs", "x");
  daemon_->Start();
  auto r = daemon_->Mount("no-such-blob", dir_ / "mnt");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("blob 'no-such-blob' is not in the store"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(Mounted(dir_ / "mnt"));
  // A blob that is no EROFS image is refused before anything is mounted.
  erofs_test::WriteFile(dir_ / "raw", erofs_test::PatternBytes(1 << 20, 4));
  daemon_->Import(dir_ / "raw", "raw", {"--force"});  // not EROFS: import only with --force
  r = daemon_->Mount("raw", dir_ / "mnt");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("not a mountable EROFS image"), std::string::npos) << r.err;
  // The daemon serves on.
  ASSERT_EQ(daemon_->Mount("x", dir_ / "mnt").code, 0);
  ExpectSameTree(tree, dir_ / "mnt");
  // No daemon: a clear error too.
  std::filesystem::create_directories(dir_ / "mnt2");
  auto none = daemon_->Lazyblob({"mount", "x", dir_ / "mnt2", "--control-socket", dir_ / "nope"});
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("no lazyblobd serves the control socket"), std::string::npos) << none.err;
  EXPECT_EQ(daemon_->Umount(dir_ / "tree").code, 2);  // not a mount
}

// Flips one payload byte of the stored chunk whose bytes are `chunk` (found by its key in
// the packs). Returns false when the record was not found.
bool CorruptStoredChunk(const std::string& store, const std::string& chunk) {
  const ChunkKey key = ChunkKeyOf(std::as_bytes(std::span(chunk.data(), chunk.size())));
  const std::string needle(reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size());
  for (const auto& e : std::filesystem::directory_iterator(store + "/packs")) {
    std::string pack = erofs_test::ReadFile(e.path());
    for (std::size_t at = pack.find(needle); at != std::string::npos;
         at = pack.find(needle, at + 1)) {
      if (at < 8 || pack.compare(at - 8, 4, "LBPR") != 0) continue;
      const std::size_t payload = at - 8 + 68 + 100;  // header is 68 bytes
      UniqueFd fd(::open(e.path().c_str(), O_WRONLY | O_CLOEXEC));
      const char flipped = static_cast<char>(pack[payload] ^ 0x5a);
      return ::pwrite(fd.get(), &flipped, 1, static_cast<off_t>(payload)) == 1;
    }
  }
  return false;
}

TEST_F(FanotifyDaemonTest, ACorruptChunkFailsItsRangeWithEioAndNothingElse) {
  const std::string tree = Tree("tree", 9);
  erofs_test::WriteFile(tree + "/victim", erofs_test::PatternBytes(2 << 20, 77));
  const std::string image = dir_ / "image.erofs";
  ASSERT_TRUE(MakeErofs(image, tree, {"-Enoinline_data"}));
  constexpr std::size_t k64K = 64 * 1024;
  daemon_->Import(image, "img", {"--chunker", "fixed", "--avg-chunk", "64K"});
  // The fixed 64 KiB chunk 1 MiB into the victim's data (away from any metadata).
  const std::string img = erofs_test::ReadFile(image);
  const std::string victim = erofs_test::ReadFile(tree + "/victim");
  const std::size_t data_at = img.find(victim.substr(0, 4096));
  ASSERT_NE(data_at, std::string::npos);
  const std::size_t chunk_at = (data_at + (1 << 20)) / k64K * k64K;
  ASSERT_TRUE(CorruptStoredChunk(daemon_->store(), img.substr(chunk_at, k64K)));
  daemon_->Start({"--write-ahead", "0"});
  ASSERT_EQ(daemon_->Mount("img", dir_ / "mnt").code, 0);
  // Every 4 KiB piece of the victim: EIO where the kernel's read unit overlaps the corrupt
  // chunk, correct bytes everywhere else, never zeros. EROFS reads its backing file in
  // units of up to 128 KiB (a large folio / the readahead window, aligned in the file) and
  // each unit is one event: a unit that overlaps the chunk cannot be allowed, so all of it
  // fails, even for a 4 KiB read (transport/FANOTIFY_FACTS.md).
  constexpr std::size_t kUnit = 128 * 1024;
  const std::size_t c0 = chunk_at - data_at, c1 = c0 + k64K;  // the chunk, in file offsets
  const std::size_t w0 = c0 / kUnit * kUnit, w1 = (c1 + kUnit - 1) / kUnit * kUnit;
  UniqueFd fd(::open((dir_ / "mnt/victim").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  int eio = 0, eio_in_chunk = 0, wrong = 0, outside = 0;
  for (std::size_t off = 0; off < victim.size(); off += 4096) {
    std::string got(4096, '\0');
    const ssize_t n = ::pread(fd.get(), got.data(), got.size(), static_cast<off_t>(off));
    if (n < 0) {
      EXPECT_EQ(errno, EIO);
      ++eio;
      eio_in_chunk += off >= c0 && off < c1;
      outside += off < w0 || off >= w1;
    } else if (got != victim.substr(off, 4096)) {
      ++wrong;  // e.g. zeros: never acceptable
    }
  }
  EXPECT_EQ(eio_in_chunk, static_cast<int>(k64K / 4096));
  EXPECT_EQ(outside, 0) << "EIO outside the 128 KiB units that overlap the corrupt chunk";
  EXPECT_EQ(wrong, 0);
  std::printf("corrupt 64 KiB chunk: %d of %zu 4 KiB reads failed with EIO (%zu KiB), %d wrong\n",
              eio, victim.size() / 4096, static_cast<std::size_t>(eio) * 4, wrong);
  // Every other file reads fine.
  std::filesystem::remove(tree + "/victim");
  ExpectSameTree(tree, dir_ / "mnt");
  EXPECT_GT(daemon_->Metric("lazyblob_chunk_lookups_total", {R"(result="corrupt")"}), 0);
}

TEST_F(FanotifyDaemonTest, SigtermUnmountsIdleMountsAndCompletesBusyOnes) {
  const std::string a = Tree("a", 11), b = Tree("b", 12, 1, 4 << 20);
  ASSERT_TRUE(MakeErofs(dir_ / "a.erofs", a));
  ASSERT_TRUE(MakeErofs(dir_ / "b.erofs", b, {"-Enoinline_data"}));
  daemon_->Import(dir_ / "a.erofs", "a");
  daemon_->Import(dir_ / "b.erofs", "b");
  daemon_->Start();
  ASSERT_EQ(daemon_->Mount("a", dir_ / "mnt-a").code, 0);
  ASSERT_EQ(daemon_->Mount("b", dir_ / "mnt-b").code, 0);
  // b is busy: a file open in it, nothing read yet (its sparse file is mostly holes).
  UniqueFd busy(::open((dir_ / "mnt-b/big0").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(busy.valid());
  const int st = daemon_->Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << "\n" << daemon_->log();
  EXPECT_FALSE(Mounted(dir_ / "mnt-a"));
  ASSERT_TRUE(Mounted(dir_ / "mnt-b"));
  // No daemon, no group: b reads correct bytes because its file was completed first.
  std::string got(4 << 20, '\0');
  ASSERT_EQ(::pread(busy.get(), got.data(), got.size(), 0), static_cast<ssize_t>(got.size()));
  EXPECT_TRUE(got == erofs_test::ReadFile(b + "/big0"));
  ExpectSameTree(b, dir_ / "mnt-b");
  EXPECT_NE(daemon_->log().find("1 unmounted, 0 already gone, 1 busy"), std::string::npos)
      << daemon_->log();
  busy.reset();
  EXPECT_EQ(::umount2((dir_ / "mnt-b").c_str(), 0), 0);
}

TEST_F(FanotifyDaemonTest, ARestartWithAWarmCacheFileFetchesNothingFromTheStore) {
  const std::string tree = Tree("tree", 13, 1, 3 << 20);
  ASSERT_TRUE(MakeErofs(dir_ / "image.erofs", tree));
  daemon_->Import(dir_ / "image.erofs", "img");
  daemon_->Start();
  ASSERT_EQ(daemon_->Mount("img", dir_ / "mnt").code, 0);
  ExpectSameTree(tree, dir_ / "mnt");
  EXPECT_GT(daemon_->Metric("lazyblob_chunk_lookups_total", {R"(result="store_hit")"}), 0);
  ASSERT_EQ(daemon_->Umount(dir_ / "mnt").code, 0);
  ASSERT_EQ(daemon_->Stop(SIGTERM), 0);
  // A new daemon, the same cache dir: the sparse file is complete, nothing is fetched.
  daemon_->Start();
  ASSERT_EQ(daemon_->Mount("img", dir_ / "mnt").code, 0);
  ExpectSameTree(tree, dir_ / "mnt");
  EXPECT_EQ(daemon_->Metric("lazyblob_chunk_lookups_total", {R"(result="store_hit")"}), 0);
  EXPECT_EQ(daemon_->Metric("lazyblob_chunk_lookups_total", {R"(result="cache_hit")"}), 0);
  EXPECT_EQ(daemon_->Metric("lazyblob_written_bytes_total"), 0);
}

// nydus's layout: metadata in small images, data in a blob device they share.
TEST_F(FanotifyDaemonTest, TheBlobdevLayoutServesEveryFileOfTwoImagesSharingOneDevice) {
  const std::string tree = Tree("tree", 17, 2, 2 << 20);
  ASSERT_TRUE(MakeErofs(dir_ / "meta1", tree,
                        {"-U", "11111111-1111-1111-1111-111111111111", "--blobdev=" + dir_ / "blob",
                         "--chunksize=65536"}));
  ASSERT_TRUE(MakeErofs(dir_ / "meta2", tree,
                        {"-U", "22222222-2222-2222-2222-222222222222",
                         "--blobdev=" + dir_ / "blob2", "--chunksize=65536"}));
  ASSERT_EQ(erofs_test::ReadFile(dir_ / "blob"), erofs_test::ReadFile(dir_ / "blob2"));
  daemon_->Import(dir_ / "meta1", "meta1");
  daemon_->Import(dir_ / "meta2", "meta2");
  daemon_->Import(dir_ / "blob", "blob", {"--force"});  // a raw blob device
  daemon_->Start();
  auto missing = daemon_->Mount("meta1", dir_ / "mnt1");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("1 extra device(s)"), std::string::npos) << missing.err;
  ASSERT_EQ(daemon_->Mount("meta1", dir_ / "mnt1", {"blob"}).code, 0);
  ASSERT_EQ(daemon_->Mount("meta2", dir_ / "mnt2", {"blob"}).code, 0);
  ExpectSameTree(tree, dir_ / "mnt1");
  ExpectSameTree(tree, dir_ / "mnt2");
  EXPECT_EQ(daemon_->Umount(dir_ / "mnt1").code, 0);
  EXPECT_EQ(daemon_->Umount(dir_ / "mnt2").code, 0);
  EXPECT_EQ(daemon_->Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace lazyblob
