// The key experiment behind the fanotify front end, run on this machine's own kernel:
// for images mkfs.erofs makes in each layout, pre-fill ONLY the metadata ranges that
// store/ErofsLayout computes into a sparse copy of the image, mark it (and the sparse blob
// device) for FAN_PRE_ACCESS, mount it file-backed, serve every data range on its event,
// and check every file. Then measure what warm reads cost with and without the mark.
//
// Cross-module on purpose (store's parser + transport's group), so it is its own
// executable. Private mount namespace; skips with one line without root or 6.14+.
// LAZYBLOB_EXPERIMENT_TREE=/some/copy makes it use that tree instead of a generated one
// (how FANOTIFY_FACTS.md's real-tree numbers were taken); committed runs never do.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "store/erofs_layout.h"
#include "tests/transport/fanotify_kernel_util.h"
#include "transport/fanotify_group.h"

namespace lazyblob {
namespace {

namespace fs = std::filesystem;
using fanotify_test::EventServer;
using fanotify_test::TempDir;

struct LayoutCase {
  const char* name;
  std::vector<std::string> mkfs_args;
  bool blobdev = false;
};

std::ostream& operator<<(std::ostream& os, const LayoutCase& c) { return os << c.name; }

// Copies the ranges of `from` into `to` (both paths); `to` already has the right size.
Status CopyRanges(const std::string& from, const std::string& to,
                  const std::vector<ErofsRange>& ranges) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CLOEXEC));
  if (!in.valid() || !out.valid()) return Status::FromErrno(errno, "open " + from + " / " + to);
  std::vector<char> buf(1 << 20);
  const std::uint64_t size = erofs_test::FileSize(from);
  for (const ErofsRange& r : ranges) {
    for (std::uint64_t at = r.offset; at < std::min(r.end(), size);) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), r.end() - at));
      ssize_t got = ::pread(in.get(), buf.data(), n, static_cast<off_t>(at));
      if (got <= 0) break;
      if (::pwrite(out.get(), buf.data(), static_cast<std::size_t>(got), static_cast<off_t>(at)) !=
          got) {
        return Status::FromErrno(errno, "pwrite " + to);
      }
      at += static_cast<std::uint64_t>(got);
    }
  }
  return Status::Ok();
}

// Drops the page cache of every file under `root` (the mounted EROFS inodes).
void DropCaches(const std::string& root) {
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file() || e.is_symlink()) continue;
    UniqueFd fd(::open(e.path().c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.valid()) ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
  }
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class ErofsFanotifyKernel : public ::testing::TestWithParam<LayoutCase> {
 protected:
  void SetUp() override {
    std::string why = fanotify_test::KernelSkipReason();
    if (!why.empty()) GTEST_SKIP() << why;
    Status s = fanotify_test::EnterPrivateMountNamespace();
    ASSERT_TRUE(s.ok()) << s.ToString();
    const char* tree = std::getenv("LAZYBLOB_EXPERIMENT_TREE");
    if (tree != nullptr && *tree != '\0') {
      tree_ = tree;
    } else {
      tree_ = dir_ / "tree";
      erofs_test::MakeTree(tree_, 11);
    }
  }
  std::string tree_;
  TempDir dir_{"erofs-fan"};
};

TEST_P(ErofsFanotifyKernel, MetadataOnlyPrefillServesEveryFileOnEvents) {
  const LayoutCase& c = GetParam();
  const std::string image = dir_ / "image", blob = dir_ / "blob";
  std::vector<std::string> argv = {"mkfs.erofs", "--quiet", "-T0", "--all-root"};
  argv.insert(argv.end(), c.mkfs_args.begin(), c.mkfs_args.end());
  if (c.blobdev) argv.insert(argv.end(), {"--blobdev=" + blob, "--chunksize=65536"});
  argv.insert(argv.end(), {image, tree_});
  ASSERT_EQ(erofs_test::RunQuiet(argv), 0) << "mkfs.erofs failed";

  const std::uint64_t image_size = erofs_test::FileSize(image);
  UniqueFd image_fd(::open(image.c_str(), O_RDONLY | O_CLOEXEC));
  ErofsReadFn read = [&](std::uint64_t off, std::span<std::byte> out) -> Status {
    ssize_t n = ::pread(image_fd.get(), out.data(), out.size(), static_cast<off_t>(off));
    if (n != static_cast<ssize_t>(out.size())) return IoError("short read of the image");
    return Status::Ok();
  };
  auto layout = ErofsLayoutParser::Parse(read, image_size);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  const auto metadata = layout->MergedMetadata(4096);
  std::uint64_t meta_bytes = 0;
  for (const auto& r : metadata) meta_bytes += r.length;

  // The served copies: holes everywhere but the metadata, written before the mark.
  const std::string sparse = dir_ / "sparse-image", sparse_blob = dir_ / "sparse-blob";
  ASSERT_TRUE(erofs_test::MakeSparse(sparse, image_size).ok());
  ASSERT_TRUE(CopyRanges(image, sparse, metadata).ok());
  if (c.blobdev) {
    ASSERT_TRUE(erofs_test::MakeSparse(sparse_blob, erofs_test::FileSize(blob)).ok());
  }

  auto group = FanotifyGroup::Open();
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  ASSERT_TRUE((*group)->MarkPreAccess(sparse).ok());
  if (c.blobdev) {
    ASSERT_TRUE((*group)->MarkPreAccess(sparse_blob).ok());
  }
  EventServer server(group->get());
  server.AddFile(sparse, image);
  if (c.blobdev) server.AddFile(sparse_blob, blob);
  server.Start();

  const std::string mnt = dir_ / "mnt";
  auto m = fanotify_test::ErofsMount::Make(sparse, mnt, c.blobdev ? "device=" + sparse_blob : "");
  ASSERT_TRUE(m.ok()) << m.status().ToString();

  auto t0 = std::chrono::steady_clock::now();
  std::size_t files = 0;
  auto bad = fanotify_test::CompareTrees(tree_, mnt, &files);
  const double cold_s = Seconds(t0);
  EXPECT_TRUE(bad.empty()) << bad.size() << " of " << files << " files differ, first "
                           << bad.front();
  EXPECT_EQ(server.errors(), 0u);
  const auto cold = server.served();
  EXPECT_FALSE(cold.empty());

  // How the events split: on which file, and whether any touched a metadata block.
  struct stat st_img {};
  ::stat(sparse.c_str(), &st_img);
  std::uint64_t on_image = 0, on_blob = 0, on_meta = 0, bytes = 0, max_count = 0;
  std::map<std::uint64_t, std::uint64_t> sizes;
  for (const auto& s : cold) {
    bytes += s.range.count;
    max_count = std::max(max_count, s.range.count);
    ++sizes[s.range.count];
    if (s.ino == st_img.st_ino) {
      ++on_image;
      for (const auto& r : metadata)
        on_meta += s.range.offset < r.end() && r.offset < s.range.end();
    } else {
      ++on_blob;
    }
  }
  // Warm: the mounted files' own page cache answers, the backing files are not read.
  t0 = std::chrono::steady_clock::now();
  bad = fanotify_test::CompareTrees(tree_, mnt, &files);
  const double warm_s = Seconds(t0);
  EXPECT_TRUE(bad.empty());
  const std::size_t warm_events = server.served().size() - cold.size();
  // Evicted but filled: every backing read still raises an event while the mark is there
  // (answered here without copying, as a daemon's fast path for filled ranges would).
  server.AllowWithoutFilling();
  DropCaches(mnt);
  t0 = std::chrono::steady_clock::now();
  bad = fanotify_test::CompareTrees(tree_, mnt, &files);
  const double marked_s = Seconds(t0);
  EXPECT_TRUE(bad.empty());
  const std::size_t marked_events = server.served().size() - cold.size() - warm_events;
  // Unmarked: the same evicted re-read raises nothing.
  ASSERT_TRUE((*group)->UnmarkPreAccess(sparse).ok());
  if (c.blobdev) {
    ASSERT_TRUE((*group)->UnmarkPreAccess(sparse_blob).ok());
  }
  DropCaches(mnt);
  const std::size_t before_unmarked = server.served().size();
  t0 = std::chrono::steady_clock::now();
  bad = fanotify_test::CompareTrees(tree_, mnt, &files);
  const double unmarked_s = Seconds(t0);
  EXPECT_TRUE(bad.empty());
  const std::size_t unmarked_events = server.served().size() - before_unmarked;
  EXPECT_EQ(unmarked_events, 0u) << "events after the marks were removed";
  EXPECT_GT(marked_events, 0u) << "an evicted re-read of a marked, filled file raised no event";
  m->reset();
  server.Stop();

  std::string sizes_text;
  for (const auto& [count, n] : sizes) {
    if (sizes_text.size() < 200)
      sizes_text += std::to_string(count / 1024) + "K:" + std::to_string(n) + " ";
  }
  std::printf(
      "[%s] files=%zu image=%llu B metadata=%llu B (%zu ranges, %llu inodes, compressed "
      "unlisted=%d)\n  cold: %zu events (image %llu, blob %llu, touching metadata %llu), %llu B "
      "asked, max %llu B, %.3f s\n  event sizes: %s\n  warm: %zu events %.3f s | evicted+marked: "
      "%zu events %.3f s | evicted+unmarked: %zu events %.3f s\n",
      c.name, files, static_cast<unsigned long long>(image_size),
      static_cast<unsigned long long>(meta_bytes), metadata.size(),
      static_cast<unsigned long long>(layout->inodes), layout->compressed_data_unlisted,
      cold.size(), static_cast<unsigned long long>(on_image),
      static_cast<unsigned long long>(on_blob), static_cast<unsigned long long>(on_meta),
      static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(max_count), cold_s,
      sizes_text.c_str(), warm_events, warm_s, marked_events, marked_s, unmarked_events,
      unmarked_s);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, ErofsFanotifyKernel,
    ::testing::Values(LayoutCase{"flat_plain", {"-Enoinline_data"}}, LayoutCase{"flat_inline", {}},
                      LayoutCase{"chunked_primary", {"--chunksize=65536"}},
                      LayoutCase{"blobdev", {}, true}, LayoutCase{"lz4", {"-zlz4"}},
                      LayoutCase{"lz4hc_ztailpacking", {"-zlz4hc", "-Eztailpacking"}},
                      LayoutCase{"lz4hc_legacy_indexes", {"-zlz4hc", "-Elegacy-compress"}},
                      LayoutCase{"lz4hc_fragments", {"-zlz4hc", "-Efragments"}}),
    [](const auto& info) { return std::string(info.param.name); });

// The control: without the metadata, a marked sparse primary cannot be mounted, and no
// event is raised on the way (metadata is read through the page cache, unasked).
TEST(ErofsFanotifyKernelControl, AnUnfilledMarkedPrimaryFailsToMountWithoutAnyEvent) {
  std::string why = fanotify_test::KernelSkipReason();
  if (!why.empty()) GTEST_SKIP() << why;
  ASSERT_TRUE(fanotify_test::EnterPrivateMountNamespace().ok());
  TempDir dir("erofs-fan");
  erofs_test::MakeTree(dir / "tree", 5);
  ASSERT_EQ(erofs_test::RunQuiet({"mkfs.erofs", "--quiet", dir / "image", dir / "tree"}), 0);
  const std::string sparse = dir / "sparse";
  ASSERT_TRUE(erofs_test::MakeSparse(sparse, erofs_test::FileSize(dir / "image")).ok());
  auto group = FanotifyGroup::Open();
  ASSERT_TRUE(group.ok());
  ASSERT_TRUE((*group)->MarkPreAccess(sparse).ok());
  EventServer server(group->get());
  server.AddFile(sparse, dir / "image");
  server.Start();
  auto m = fanotify_test::ErofsMount::Make(sparse, dir / "mnt", "");
  server.Stop();
  ASSERT_FALSE(m.ok()) << "a sparse primary mounted";
  EXPECT_EQ(m.status().errno_value(), EINVAL) << m.status().ToString();
  EXPECT_TRUE(server.served().empty());
}

}  // namespace
}  // namespace lazyblob
