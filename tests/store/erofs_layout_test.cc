#include "store/erofs_layout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "tests/common/erofs_tree.h"

namespace lazyblob {
namespace {

using erofs_test::TempDir;

std::vector<std::byte> Load(const std::string& path) {
  std::string s = erofs_test::ReadFile(path);
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

struct TreeCounts {
  std::uint64_t files = 0, dirs = 1, links = 0, bytes = 0;
};
TreeCounts Count(const std::string& root) {
  TreeCounts c;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_symlink()) {
      ++c.links;
    } else if (e.is_directory()) {
      ++c.dirs;
    } else if (e.is_regular_file()) {
      ++c.files;
      c.bytes += e.file_size();
    }
  }
  return c;
}

class ErofsLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!erofs_test::HaveMkfsErofs()) GTEST_SKIP() << "mkfs.erofs not found (erofs-utils)";
    erofs_test::MakeTree(dir_ / "tree", 3);
  }
  // Runs mkfs.erofs with `args` (then IMAGE TREE) and parses the image.
  Result<ErofsLayout> Make(std::vector<std::string> args) {
    std::vector<std::string> argv = {"mkfs.erofs", "--quiet", "-T0", "--all-root"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(dir_ / "image");
    argv.push_back(dir_ / "tree");
    if (erofs_test::RunQuiet(argv) != 0) return Internal("mkfs.erofs failed");
    image_ = Load(dir_ / "image");
    return ErofsLayoutParser::ParseBytes(image_);
  }
  // No byte of device 0 is both metadata and listed data.
  void ExpectDisjoint(const ErofsLayout& l) {
    std::vector<ErofsRange> all = l.metadata;
    for (const ErofsRange& d : l.data) {
      if (d.device == 0) all.push_back(d);
    }
    std::sort(all.begin(), all.end(),
              [](const ErofsRange& a, const ErofsRange& b) { return a.offset < b.offset; });
    for (std::size_t i = 1; i < all.size(); ++i) {
      bool both_meta = IsErofsMetadata(all[i - 1].kind) && IsErofsMetadata(all[i].kind);
      if (!both_meta) {
        EXPECT_LE(all[i - 1].end(), all[i].offset)
            << ErofsRangeKindName(all[i - 1].kind) << " of nid " << all[i - 1].nid << " overlaps "
            << ErofsRangeKindName(all[i].kind) << " of nid " << all[i].nid;
      }
    }
  }

  TempDir dir_{"erofs"};
  std::vector<std::byte> image_;
};

TEST_F(ErofsLayoutTest, FlatImageCountsEveryInodeAndListsEveryDataByte) {
  auto l = Make({});
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  TreeCounts c = Count(dir_ / "tree");
  EXPECT_EQ(l->regular_files, c.files);
  EXPECT_EQ(l->directories, c.dirs);
  EXPECT_EQ(l->symlinks, c.links);
  EXPECT_FALSE(l->compressed_data_unlisted);
  EXPECT_TRUE(l->devices.empty());
  // File bytes are either listed data (whole blocks) or inline tails (exact).
  std::uint64_t file_data = 0, inline_bytes = 0;
  for (const ErofsRange& d : l->data) {
    EXPECT_EQ(d.device, 0);
    if (d.kind == ErofsRangeKind::kFileData) file_data += d.length;
  }
  for (const ErofsRange& m : l->metadata) {
    if (m.kind == ErofsRangeKind::kInlineData) inline_bytes += m.length;
  }
  EXPECT_GE(file_data + inline_bytes, c.bytes);
  EXPECT_EQ(l->metadata.front().kind, ErofsRangeKind::kSuperblock);
  ExpectDisjoint(*l);
}

TEST_F(ErofsLayoutTest, BlobDeviceImageHasItsFileDataOnDeviceOne) {
  std::string blob = dir_ / "blob";
  auto l = Make({"--blobdev=" + blob, "--chunksize=65536"});
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  ASSERT_EQ(l->devices.size(), 1u);
  // mkfs.erofs 1.5 leaves the slot zeroed (no tag, 0 blocks); later versions fill it.
  if (l->devices[0].blocks != 0) {
    EXPECT_EQ(std::uint64_t{l->devices[0].blocks} * 4096, erofs_test::FileSize(blob));
  }
  std::uint64_t on_blob = 0;
  for (const ErofsRange& d : l->data) {
    if (d.kind == ErofsRangeKind::kFileData) {
      EXPECT_EQ(d.device, 1) << "file data of nid " << d.nid << " on the primary";
      on_blob += d.length;
    }
    EXPECT_LE(d.end(), erofs_test::FileSize(d.device == 0 ? dir_ / "image" : blob));
  }
  EXPECT_GT(on_blob, 0u);
  EXPECT_GT(l->chunk_based_files, 0u);
  bool has_index = false;
  for (const ErofsRange& m : l->metadata) has_index |= m.kind == ErofsRangeKind::kChunkIndex;
  EXPECT_TRUE(has_index);
  ExpectDisjoint(*l);
}

TEST_F(ErofsLayoutTest, CompressedImageListsIndexesAsMetadataAndLeavesPclustersUnlisted) {
  for (const char* z : {"-zlz4", "-zlz4hc", "-zlz4hc,12"}) {
    auto l = Make({z});
    ASSERT_TRUE(l.ok()) << z << ": " << l.status().ToString();
    EXPECT_GT(l->compressed_files, 0u) << z;
    EXPECT_TRUE(l->compressed_data_unlisted) << z;
    bool has_index = false;
    for (const ErofsRange& m : l->metadata) has_index |= m.kind == ErofsRangeKind::kCompressedIndex;
    EXPECT_TRUE(has_index) << z;
    ExpectDisjoint(*l);
    // Whatever is not metadata on the primary is where the pclusters are.
    auto rest = l->PrimaryDataRanges(image_.size(), 4096);
    EXPECT_FALSE(rest.empty()) << z;
  }
}

TEST_F(ErofsLayoutTest, RejectsBadMagicAndTruncatedImages) {
  auto l = Make({});
  ASSERT_TRUE(l.ok());
  std::vector<std::byte> bad = image_;
  bad[1024] = std::byte{0};
  EXPECT_EQ(ErofsLayoutParser::ParseBytes(bad).status().code(), StatusCode::kCorruption);
  for (std::size_t cut : {std::size_t{0}, std::size_t{1100}, image_.size() / 2}) {
    std::span<const std::byte> part(image_.data(), cut);
    auto r = ErofsLayoutParser::ParseBytes(part);
    EXPECT_FALSE(r.ok()) << "cut at " << cut;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
    }
  }
}

TEST_F(ErofsLayoutTest, ADirectoryCycleEndsAndInodeLimitsHold) {
  auto l = Make({});
  ASSERT_TRUE(l.ok());
  ErofsLayoutOptions tight;
  tight.max_inodes = 3;
  EXPECT_EQ(ErofsLayoutParser::ParseBytes(image_, tight).status().code(), StatusCode::kCorruption);
  tight = {};
  tight.max_ranges = 5;
  EXPECT_EQ(ErofsLayoutParser::ParseBytes(image_, tight).status().code(), StatusCode::kCorruption);
}

TEST_F(ErofsLayoutTest, MergedMetadataIsSortedAlignedAndDisjoint) {
  auto l = Make({"-zlz4hc"});
  ASSERT_TRUE(l.ok());
  auto m = l->MergedMetadata(4096);
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m.front().offset, 0u);
  for (std::size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(m[i].offset % 4096, 0u);
    EXPECT_EQ(m[i].length % 4096, 0u);
    if (i > 0) {
      EXPECT_LT(m[i - 1].end(), m[i].offset);
    }
  }
  std::uint64_t covered = 0;
  for (const auto& r : m) covered += r.length;
  for (const auto& r : l->PrimaryDataRanges(image_.size(), 4096)) covered += r.length;
  EXPECT_EQ(covered, (image_.size() + 4095) / 4096 * 4096);
}

}  // namespace
}  // namespace lazyblob
