// Readers (secondary instances) serving while a writer imports; real EROFS images.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/aligned_buffer.h"
#include "store/chunk_store.h"
#include "store_test_util.h"

namespace lazyblob {
namespace {

using testing::RandomBytes;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

std::vector<std::byte> Blob(int i) { return RandomBytes(300000 + 4096 * i, 800 + i, i % 2); }

TEST(ChunkStoreConcurrency, ReadersServeWhileAWriterImports) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  auto writer = ChunkStore::Open(testing::WriterOptions(dir));
  ASSERT_TRUE(writer.ok());
  WriteFile(tmp / "in0", Blob(0));
  ImportOptions o;
  o.id = "b0";
  ASSERT_TRUE((*writer)->ImportBlob(tmp / "in0", o).ok());

  auto ropts = testing::ReaderOptions(dir);
  ropts.hold_serving_lock = true;
  auto reader = ChunkStore::Open(ropts);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  constexpr int kBlobs = 6;
  std::atomic<int> imported{1};
  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, chunks_read{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      AlignedBuffer buf(65536);
      for (int round = 0; !done.load() || round < 2; ++round) {
        const int i = (t + round) % imported.load();
        auto map = (*reader)->OpenBlob("b" + std::to_string(i));
        if (!map.ok()) {
          ++failures;
          continue;
        }
        const auto expected = Blob(i);
        for (const ChunkExtent& e : map->map->extents) {
          if (!(*reader)->ReadChunk(e, buf.span()).ok() ||
              std::memcmp(buf.data(), expected.data() + e.blob_offset, e.length) != 0) {
            ++failures;
          }
          ++chunks_read;
        }
      }
    });
  }
  for (int i = 1; i < kBlobs; ++i) {
    WriteFile(tmp / "in", Blob(i));
    o.id = "b" + std::to_string(i);
    ASSERT_TRUE((*writer)->ImportBlob(tmp / "in", o).ok());
    imported = i + 1;  // committed: readers must find it (catch-up on miss)
  }
  done = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(chunks_read.load(), 50);
  auto v = (*reader)->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->clean());
  EXPECT_EQ(v->blobs_checked, static_cast<std::uint64_t>(kBlobs));
}

TEST(ChunkStoreConcurrency, ErofsImageRoundTrips) {
  if (std::system("command -v mkfs.erofs >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "mkfs.erofs is not installed";
  }
  TempDir tmp;
  const std::string tree = tmp / "tree";
  std::filesystem::create_directories(tree + "/sub/deeper");
  for (int i = 0; i < 20; ++i) {
    WriteFile(tree + "/f" + std::to_string(i), RandomBytes(1000 + i * 7919, i, i % 3 == 0));
  }
  WriteFile(tree + "/sub/deeper/big", RandomBytes(700000, 99, true));
  std::filesystem::create_symlink("f1", tree + "/link");
  const std::string img = tmp / "image.erofs";
  ASSERT_EQ(std::system(("mkfs.erofs --quiet " + img + " " + tree + " >/dev/null 2>&1").c_str()),
            0);
  auto store = ChunkStore::Open(testing::WriterOptions(tmp / "store"));
  ASSERT_TRUE(store.ok());
  auto r = (*store)->ImportBlob(img, ImportOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE((*store)->ExportToPath(r->id, tmp / "out").ok());
  EXPECT_EQ(ReadFile(tmp / "out"), ReadFile(img));
  // Same image again under another id: every chunk deduplicates.
  ImportOptions o;
  o.id = "again";
  auto r2 = (*store)->ImportBlob(img, o);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->new_chunks, 0u);
}

}  // namespace
}  // namespace lazyblob
