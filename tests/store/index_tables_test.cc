// Issue 14 (1): the index's table files stay few however many commands wrote to it. A
// daemon's RocksDB secondary keeps every table open, so their count is a floor under its
// fds; 100 imports used to leave about 250.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "store/chunk_store.h"
#include "store_test_util.h"

namespace lazyblob {
namespace {

using testing::RandomBytes;
using testing::TempDir;
using testing::WriteFile;
using testing::WriterOptions;

int TableFiles(const std::string& index_dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(index_dir)) {
    n += e.path().extension() == ".sst";
  }
  return n;
}

TEST(IndexTables, ManyShortLivedWritersLeaveFewTables) {
  TempDir tmp;
  WriteFile(tmp / "in", RandomBytes(64 << 10, 5));
  constexpr int kCommands = 40;
  for (int i = 0; i < kCommands; ++i) {  // one writer per command, as `lazyblob import`
    auto store = ChunkStore::Open(WriterOptions(tmp / "store"));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ImportOptions o;
    o.id = "blob" + std::to_string(i);
    ASSERT_TRUE((*store)->ImportBlob(tmp / "in", o).ok());
  }
  const int tables = TableFiles(tmp / "store/index");
  std::printf("%d imports, each its own writer: %d index tables\n", kCommands, tables);
  // Each of the 5 column families holds at most a handful before a closing writer merges
  // them; without that it grew by ~2 tables per import (80 here).
  EXPECT_LE(tables, 5 * 9);
  EXPECT_LT(tables, kCommands);
  auto reader = ChunkStore::Open(testing::ReaderOptions(tmp / "store"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  for (int i = 0; i < kCommands; ++i) {
    EXPECT_TRUE((*reader)->OpenBlob("blob" + std::to_string(i)).ok()) << i;
  }
}

}  // namespace
}  // namespace lazyblob
