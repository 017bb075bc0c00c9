// Readers (secondary instances) serving while a writer imports; real EROFS images.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
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

// gc running in a loop while daemon-style readers (secondary instances holding the
// SERVING lock and a lease per blob) read every byte of the blobs they serve: each round
// moves the served chunks to a new pack and unlinks the old one (FORMAT.md "gc while a
// daemon serves").
TEST(ChunkStoreConcurrency, GcLoopsWhileReadersReadEveryByte) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  auto writer = ChunkStore::Open(testing::WriterOptions(dir));
  ASSERT_TRUE(writer.ok());
  constexpr int kServed = 3;
  ImportOptions o;
  for (int i = 0; i < kServed; ++i) {
    WriteFile(tmp / "in", Blob(i));
    o.id = "b" + std::to_string(i);
    ASSERT_TRUE((*writer)->ImportBlob(tmp / "in", o).ok());
  }
  auto ropts = testing::ReaderOptions(dir);
  ropts.hold_serving_lock = true;
  auto reader = ChunkStore::Open(ropts);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();

  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, passes{0};
  std::mutex first_error_mu;
  std::string first_error;
  auto fail = [&](const std::string& why) {
    std::lock_guard lock(first_error_mu);
    if (failures++ == 0) first_error = why;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      const int i = t % kServed;
      auto blob = (*reader)->OpenBlob("b" + std::to_string(i));  // held: a lease
      if (!blob.ok()) return fail(blob.status().ToString());
      const auto expected = Blob(i);
      AlignedBuffer buf(1 << 20);
      for (int pass = 0; !done.load() || pass < 2; ++pass) {
        for (const ChunkExtent& e : blob->map->extents) {
          Status s = (*reader)->ReadChunk(e, buf.span());
          if (!s.ok()) {
            fail(s.ToString());
          } else if (std::memcmp(buf.data(), expected.data() + e.blob_offset, e.length) != 0) {
            fail("wrong bytes at offset " + std::to_string(e.blob_offset));
          }
        }
        ++passes;
      }
    });
  }
  constexpr int kRounds = 25;
  int packs_deleted = 0;
  for (int round = 0; round < kRounds; ++round) {
    WriteFile(tmp / "junk", RandomBytes(200000, 5000 + round));
    o.id = "junk";
    ASSERT_TRUE((*writer)->ImportBlob(tmp / "junk", o).ok());
    ASSERT_TRUE((*writer)->Remove("junk").ok());
    auto gc = (*writer)->Gc(false);
    ASSERT_TRUE(gc.ok()) << gc.status().ToString();
    EXPECT_GT(gc->chunks_removed, 0u);
    packs_deleted += static_cast<int>(gc->packs_deleted);
  }
  done = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << first_error;
  EXPECT_GE(passes.load(), 12);
  EXPECT_EQ(packs_deleted, kRounds);  // the served chunks moved every round
  // The daemon reads on; within its next kSweepEveryLookups reads no fd of a deleted pack
  // is left open: gc's space is really freed.
  AlignedBuffer buf(1 << 20);
  for (int pass = 0; pass < 4; ++pass) {
    for (int i = 0; i < kServed; ++i) {
      auto blob = (*reader)->OpenBlob("b" + std::to_string(i));
      ASSERT_TRUE(blob.ok());
      for (const ChunkExtent& e : blob->map->extents) {
        ASSERT_TRUE((*reader)->ReadChunk(e, buf.span()).ok());
      }
    }
  }
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
    EXPECT_FALSE(target.find(".lbp") != std::string::npos &&
                 target.find("(deleted)") != std::string::npos)
        << target;
  }
  auto v = (*reader)->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->clean());
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
