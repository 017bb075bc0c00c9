// ChunkStore's transfer API (push/pull): ReadStoredChunk, PutChunks, ImportChunkedBlob.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/unique_fd.h"
#include "store/chunk_store.h"
#include "store/hashing.h"
#include "store_test_util.h"

namespace lazyblob {
namespace {

using testing::RandomBytes;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;
using testing::WriterOptions;

std::unique_ptr<ChunkStore> OpenWriter(const std::string& dir) {
  auto s = ChunkStore::Open(WriterOptions(dir));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

// Half compressible text, half random: both codecs occur.
std::vector<std::byte> MixedBlob(std::size_t n, std::uint64_t seed) {
  auto text = RandomBytes(n / 2, seed, true);
  auto random = RandomBytes(n - n / 2, seed + 100);
  text.insert(text.end(), random.begin(), random.end());
  return text;
}

// A source store holding v1 and v2 (v2 = v1 with a changed middle), the way a registry
// would hand them out: info + map, and every chunk as stored.
struct Source {
  TempDir tmp;
  std::unique_ptr<ChunkStore> store;
  std::vector<std::byte> v1, v2;

  Source() {
    store = OpenWriter(tmp / "src");
    v1 = MixedBlob(1 << 20, 1);
    v2 = v1;
    auto fresh = RandomBytes(200000, 9);
    std::copy(fresh.begin(), fresh.end(), v2.begin() + 400000);
    WriteFile(tmp / "v1", v1);
    WriteFile(tmp / "v2", v2);
    ImportOptions o;
    o.id = "v1";
    EXPECT_TRUE(store->ImportBlob(tmp / "v1", o).ok());
    o.id = "v2";
    EXPECT_TRUE(store->ImportBlob(tmp / "v2", o).ok());
  }
  BlobInfo Info(const std::string& id) { return store->GetBlob(id).value(); }
  std::vector<ChunkExtent> Map(const std::string& id) {
    return store->OpenBlob(id).value().map->extents;
  }
  // A supplier that reads from this store and records what it was asked for.
  ChunkSupplier Supplier(std::set<ChunkKey>* asked) {
    return [this, asked](const std::vector<ChunkExtent>& missing, const ChunkSink& sink) {
      for (const ChunkExtent& e : missing) {
        asked->insert(e.key);
        LB_ASSIGN_OR_RETURN(StoredChunk c, store->ReadStoredChunk(e.key));
        LB_RETURN_IF_ERROR(sink(std::move(c)));
      }
      return Status::Ok();
    };
  }
};

std::set<ChunkKey> Keys(const std::vector<ChunkExtent>& extents) {
  std::set<ChunkKey> s;
  for (const ChunkExtent& e : extents) s.insert(e.key);
  return s;
}

TEST(ChunkStoreTransfer, ReadStoredChunkMatchesTheRecordAndVerifies) {
  Source src;
  std::set<Codec> codecs;
  for (const ChunkExtent& e : src.Map("v1")) {
    ASSERT_OK_AND_ASSIGN(StoredChunk c, src.store->ReadStoredChunk(e.key));
    EXPECT_EQ(c.key, e.key);
    EXPECT_EQ(c.raw_len, e.length);
    std::vector<std::byte> raw;
    ASSERT_OK(ChunkStore::VerifyStoredChunk(c, &raw));
    EXPECT_TRUE(std::equal(raw.begin(), raw.end(), src.v1.begin() + e.blob_offset));
    codecs.insert(c.codec);
  }
  EXPECT_EQ(codecs, (std::set<Codec>{Codec::kRaw, Codec::kZstd}));
  EXPECT_EQ(src.store->ReadStoredChunk(ChunkKey{}).status().code(), StatusCode::kNotFound);
}

TEST(ChunkStoreTransfer, ReadStoredChunkRefusesAFlippedByte) {
  Source src;
  src.store.reset();  // reopened below after the damage
  const std::string pack = src.tmp / "src/packs/pack-000001.lbp";
  struct stat st {};
  ASSERT_EQ(::stat(pack.c_str(), &st), 0);
  {
    UniqueFd fd(::open(pack.c_str(), O_RDWR));
    char c;
    const off_t at = st.st_size / 3;
    ASSERT_EQ(::pread(fd.get(), &c, 1, at), 1);
    c ^= 0x20;
    ASSERT_EQ(::pwrite(fd.get(), &c, 1, at), 1);
  }
  src.store = OpenWriter(src.tmp / "src");
  std::set<ChunkKey> all = Keys(src.Map("v1"));
  for (const ChunkKey& k : Keys(src.Map("v2"))) all.insert(k);
  int bad = 0;
  for (const ChunkKey& k : all) {
    auto c = src.store->ReadStoredChunk(k);
    if (!c.ok()) {
      EXPECT_EQ(c.status().code(), StatusCode::kCorruption) << c.status().ToString();
      ++bad;
    }
  }
  EXPECT_EQ(bad, 1);
}

TEST(ChunkStoreTransfer, ImportChunkedBlobAsksOnlyForMissingChunksAndExportsIdentically) {
  Source src;
  TempDir dst_dir;
  auto dst = OpenWriter(dst_dir / "dst");
  std::set<ChunkKey> asked;
  ASSERT_OK_AND_ASSIGN(ImportResult r1,
                       dst->ImportChunkedBlob(src.Info("v1"), src.Map("v1"), src.Supplier(&asked)));
  EXPECT_EQ(asked, Keys(src.Map("v1")));
  EXPECT_EQ(r1.new_chunks, asked.size());
  EXPECT_FALSE(r1.already_present);

  asked.clear();
  ASSERT_OK_AND_ASSIGN(ImportResult r2,
                       dst->ImportChunkedBlob(src.Info("v2"), src.Map("v2"), src.Supplier(&asked)));
  std::set<ChunkKey> only_v2;
  const std::set<ChunkKey> k1 = Keys(src.Map("v1"));
  for (const ChunkKey& k : Keys(src.Map("v2"))) {
    if (k1.count(k) == 0) only_v2.insert(k);
  }
  EXPECT_FALSE(only_v2.empty());
  EXPECT_EQ(asked, only_v2);
  EXPECT_EQ(r2.new_chunks, only_v2.size());

  ASSERT_OK(dst->ExportToPath("v1", dst_dir / "v1.out"));
  ASSERT_OK(dst->ExportToPath("v2", dst_dir / "v2.out"));
  EXPECT_EQ(ReadFile(dst_dir / "v1.out"), src.v1);
  EXPECT_EQ(ReadFile(dst_dir / "v2.out"), src.v2);
  ASSERT_OK_AND_ASSIGN(VerifyReport v, dst->Verify());
  EXPECT_TRUE(v.clean());

  // Again: nothing asked; other content under the same id is refused.
  asked.clear();
  ASSERT_OK_AND_ASSIGN(ImportResult again,
                       dst->ImportChunkedBlob(src.Info("v2"), src.Map("v2"), src.Supplier(&asked)));
  EXPECT_TRUE(again.already_present);
  EXPECT_TRUE(asked.empty());
  BlobInfo other = src.Info("v1");
  other.id = "v2";
  EXPECT_EQ(dst->ImportChunkedBlob(other, src.Map("v1"), src.Supplier(&asked)).status().code(),
            StatusCode::kAlreadyExists);
}

// After a failed ImportChunkedBlob the destination holds no chunk, no blob, no pack bytes.
void ExpectEmpty(ChunkStore& store, const std::string& dir) {
  ASSERT_OK_AND_ASSIGN(StoreStats s, store.Stats());
  EXPECT_EQ(s.blobs, 0u);
  EXPECT_EQ(s.chunks, 0u);
  for (const auto& f : std::filesystem::directory_iterator(dir + "/packs")) {
    ADD_FAILURE() << "leftover pack " << f.path() << " of " << f.file_size() << " bytes";
  }
}

TEST(ChunkStoreTransfer, AFlippedByteFromTheSupplierIsRefusedAndNothingIsStored) {
  Source src;
  TempDir dst_dir;
  auto dst = OpenWriter(dst_dir / "dst");
  int supplied = 0;
  auto flipping = [&](const std::vector<ChunkExtent>& missing, const ChunkSink& sink) {
    for (const ChunkExtent& e : missing) {
      LB_ASSIGN_OR_RETURN(StoredChunk c, src.store->ReadStoredChunk(e.key));
      if (++supplied == 3) c.payload[c.payload.size() / 2] ^= 1;
      LB_RETURN_IF_ERROR(sink(std::move(c)));
    }
    return Status::Ok();
  };
  auto r = dst->ImportChunkedBlob(src.Info("v1"), src.Map("v1"), flipping);
  ASSERT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
  EXPECT_EQ(supplied, 3);
  ExpectEmpty(*dst, dst_dir / "dst");
}

TEST(ChunkStoreTransfer, SupplierFailureOrAMissingChunkOrAWrongBlobHashLeavesNothing) {
  Source src;
  TempDir dst_dir;
  auto dst = OpenWriter(dst_dir / "dst");
  std::set<ChunkKey> asked;
  auto full = src.Supplier(&asked);
  auto failing = [&](const std::vector<ChunkExtent>& missing, const ChunkSink& sink) {
    LB_RETURN_IF_ERROR(full({missing.begin(), missing.begin() + 2}, sink));
    return IoError("registry went away");
  };
  EXPECT_EQ(dst->ImportChunkedBlob(src.Info("v1"), src.Map("v1"), failing).status().code(),
            StatusCode::kIoError);
  ExpectEmpty(*dst, dst_dir / "dst");

  auto short_supply = [&](const std::vector<ChunkExtent>& missing, const ChunkSink& sink) {
    return full({missing.begin(), missing.end() - 1}, sink);
  };
  EXPECT_EQ(dst->ImportChunkedBlob(src.Info("v1"), src.Map("v1"), short_supply).status().code(),
            StatusCode::kCorruption);
  ExpectEmpty(*dst, dst_dir / "dst");

  BlobInfo lying = src.Info("v1");
  lying.sha256[0] ^= 1;
  EXPECT_EQ(dst->ImportChunkedBlob(lying, src.Map("v1"), full).status().code(),
            StatusCode::kCorruption);
  ExpectEmpty(*dst, dst_dir / "dst");

  std::vector<ChunkExtent> gap = src.Map("v1");
  gap.pop_back();
  EXPECT_EQ(dst->ImportChunkedBlob(src.Info("v1"), gap, full).status().code(),
            StatusCode::kCorruption);
  // The store still works afterwards.
  ASSERT_OK(dst->ImportChunkedBlob(src.Info("v1"), src.Map("v1"), full).status());
  ASSERT_OK(dst->ExportToPath("v1", dst_dir / "out"));
  EXPECT_EQ(ReadFile(dst_dir / "out"), src.v1);
}

TEST(ChunkStoreTransfer, PutChunksStoresVerifiedChunksOnceAndRefusesBadOnes) {
  Source src;
  TempDir dst_dir;
  auto dst = OpenWriter(dst_dir / "dst");
  std::vector<StoredChunk> chunks;
  for (const ChunkExtent& e : src.Map("v1"))
    chunks.push_back(src.store->ReadStoredChunk(e.key).value());
  const std::size_t unique = Keys(src.Map("v1")).size();
  ASSERT_OK_AND_ASSIGN(PutChunksResult r, dst->PutChunks(chunks));
  EXPECT_EQ(r.new_chunks, unique);
  ASSERT_OK_AND_ASSIGN(PutChunksResult again, dst->PutChunks(chunks));
  EXPECT_EQ(again.new_chunks, 0u);
  EXPECT_EQ(again.new_stored_bytes, 0u);
  ASSERT_OK_AND_ASSIGN(StoreStats s, dst->Stats());
  EXPECT_EQ(s.chunks, unique);
  EXPECT_EQ(s.blobs, 0u);

  // Every chunk is now local: the blob needs nothing supplied.
  std::set<ChunkKey> asked;
  ASSERT_OK_AND_ASSIGN(ImportResult b,
                       dst->ImportChunkedBlob(src.Info("v1"), src.Map("v1"), src.Supplier(&asked)));
  EXPECT_TRUE(asked.empty());
  EXPECT_EQ(b.new_chunks, 0u);

  StoredChunk bad = src.store->ReadStoredChunk(src.Map("v2")[5].key).value();
  bad.sha256[3] ^= 1;
  EXPECT_EQ(dst->PutChunks(std::span(&bad, 1)).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace lazyblob
