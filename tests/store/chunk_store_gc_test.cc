// Gc over damaged packs: a live record gc cannot read must never go from corrupt to
// missing (issue 14, item 9).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "core/unique_fd.h"
#include "store/chunk_store.h"
#include "store/pack_scanner.h"
#include "store_test_util.h"

namespace lazyblob {
namespace {

using testing::RandomBytes;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;
using testing::WriterOptions;

// "keep" and "drop" imported into pack 1, then "drop" removed: gc has to rewrite pack 1.
struct TwoBlobStore {
  TempDir tmp;
  std::string dir = tmp / "store";
  std::unique_ptr<ChunkStore> store;
  std::vector<std::byte> keep = RandomBytes(300000, 31), drop = RandomBytes(300000, 32);
  ChunkKey keep_key, drop_key;  // the first chunk of each

  TwoBlobStore() {
    store = ChunkStore::Open(WriterOptions(dir)).value();
    WriteFile(tmp / "keep", keep);
    WriteFile(tmp / "drop", drop);
    ImportOptions o;
    o.id = "keep";
    EXPECT_TRUE(store->ImportBlob(tmp / "keep", o).ok());
    o.id = "drop";
    EXPECT_TRUE(store->ImportBlob(tmp / "drop", o).ok());
    keep_key = store->OpenBlob("keep").value().map->extents.at(0).key;
    drop_key = store->OpenBlob("drop").value().map->extents.at(0).key;
    EXPECT_TRUE(store->Remove("drop").ok());
  }
  std::string Pack1() const { return dir + "/packs/pack-000001.lbp"; }
  // Offset of the first record of pack 1 that `match` accepts.
  std::uint64_t FindRecord(const std::function<bool(const ScannedRecord&)>& match) const {
    auto scanner = PackScanner::Open(dir, 1).value();
    std::vector<std::string> problems;
    while (auto next = scanner->Next(&problems).value()) {
      if (match(*next)) return next->offset;
    }
    ADD_FAILURE() << "no such record in pack 1";
    return 0;
  }
  // Flips a byte of the key field: the record header no longer passes its checksum.
  void DamageHeaderAt(std::uint64_t record_offset) const {
    UniqueFd fd(::open(Pack1().c_str(), O_RDWR | O_CLOEXEC));
    std::uint8_t b = 0;
    const auto off = static_cast<off_t>(record_offset + 20);
    ASSERT_EQ(::pread(fd.get(), &b, 1, off), 1);
    b ^= 0x5a;
    ASSERT_EQ(::pwrite(fd.get(), &b, 1, off), 1);
  }
};

TEST(ChunkStoreGc, RefusesToDropAPackHoldingALiveChunkItCannotRead) {
  TwoBlobStore s;
  const ChunkKey key = s.keep_key;
  s.DamageHeaderAt(s.FindRecord([&](const ScannedRecord& r) { return r.header.key == key; }));
  ASSERT_OK_AND_ASSIGN(VerifyReport before, s.store->Verify());
  ASSERT_EQ(before.corrupt.size(), 1u);

  auto gc = s.store->Gc(false);
  ASSERT_EQ(gc.status().code(), StatusCode::kCorruption) << gc.status().ToString();
  EXPECT_NE(gc.status().message().find("pack 1"), std::string::npos) << gc.status().ToString();
  EXPECT_NE(gc.status().message().find(key.ToHex()), std::string::npos) << gc.status().ToString();
  // Nothing moved: the chunk is still corrupt where it was, not missing.
  EXPECT_TRUE(std::filesystem::exists(s.Pack1()));
  ASSERT_OK_AND_ASSIGN(VerifyReport after, s.store->Verify());
  ASSERT_EQ(after.corrupt.size(), 1u);
  EXPECT_EQ(after.corrupt[0].key, key);
  EXPECT_EQ(after.corrupt[0].pack_id, 1u);
  EXPECT_EQ(after.corrupt[0].reason, before.corrupt[0].reason);
  EXPECT_TRUE(after.missing.empty());

  // Once no blob uses the damaged chunk, gc may drop the pack.
  ASSERT_OK(s.store->Remove("keep"));
  ASSERT_OK(s.store->Gc(false).status());
  EXPECT_FALSE(std::filesystem::exists(s.Pack1()));
  ASSERT_OK_AND_ASSIGN(VerifyReport last, s.store->Verify());
  EXPECT_TRUE(last.clean());
}

TEST(ChunkStoreGc, RefusesToDropAPackHoldingALiveManifestItCannotRead) {
  TwoBlobStore s;
  s.DamageHeaderAt(s.FindRecord([](const ScannedRecord& r) {
    return r.header.type == RecordType::kManifest;  // keep's: imported first
  }));
  auto gc = s.store->Gc(false);
  ASSERT_EQ(gc.status().code(), StatusCode::kCorruption) << gc.status().ToString();
  EXPECT_NE(gc.status().message().find("'keep'"), std::string::npos) << gc.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(s.Pack1()));
  ASSERT_OK(s.store->ExportToPath("keep", s.tmp / "out"));
  EXPECT_EQ(ReadFile(s.tmp / "out"), s.keep);
}

TEST(ChunkStoreGc, DropsADeadChunkItCannotReadAndForgetsIt) {
  TwoBlobStore s;
  const ChunkKey dead = s.drop_key;
  s.DamageHeaderAt(s.FindRecord([&](const ScannedRecord& r) { return r.header.key == dead; }));

  ASSERT_OK_AND_ASSIGN(GcResult gc, s.store->Gc(false));
  EXPECT_EQ(gc.packs_deleted, 1u);
  EXPECT_FALSE(std::filesystem::exists(s.Pack1()));
  ASSERT_OK_AND_ASSIGN(VerifyReport v, s.store->Verify());
  EXPECT_TRUE(v.clean()) << v.corrupt.size() << " corrupt, the first "
                         << (v.corrupt.empty() ? "" : v.corrupt[0].reason);
  ASSERT_OK(s.store->ExportToPath("keep", s.tmp / "out"));
  EXPECT_EQ(ReadFile(s.tmp / "out"), s.keep);
}

}  // namespace
}  // namespace lazyblob
