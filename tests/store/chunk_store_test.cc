#include "store/chunk_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "core/aligned_buffer.h"
#include "store/blob_lease.h"
#include "store/hashing.h"
#include "store/pack_set.h"
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

ImportOptions WithId(const std::string& id) {
  ImportOptions o;
  o.id = id;
  return o;
}

// Mixed data: compressible text and random runs, so both codecs occur.
std::vector<std::byte> MixedBlob(std::size_t n, std::uint64_t seed) {
  auto text = RandomBytes(n / 2, seed, true);
  auto random = RandomBytes(n - n / 2, seed + 100);
  text.insert(text.end(), random.begin(), random.end());
  return text;
}

TEST(ChunkStore, ImportThenExportIsByteIdentical) {
  TempDir tmp;
  auto store = OpenWriter(tmp / "store");
  ASSERT_NE(store, nullptr);
  auto data = MixedBlob((3 << 20) + 777, 1);
  WriteFile(tmp / "in", data);
  std::uint64_t last_progress = 0;
  ASSERT_OK_AND_ASSIGN(ImportResult r,
                       store->ImportBlob(tmp / "in", WithId("img"), [&](auto done, auto total) {
                         EXPECT_GE(done, last_progress);
                         EXPECT_EQ(total, data.size());
                         last_progress = done;
                       }));
  EXPECT_EQ(last_progress, data.size());
  EXPECT_EQ(r.id, "img");
  EXPECT_EQ(r.size, data.size());
  EXPECT_GT(r.chunks, 10u);
  EXPECT_EQ(r.new_chunks, r.chunks);
  ASSERT_OK(store->ExportToPath("img", tmp / "out"));
  EXPECT_EQ(ReadFile(tmp / "out"), data);
  ASSERT_OK_AND_ASSIGN(BlobInfo info, store->GetBlob("img"));
  EXPECT_EQ(info.size, data.size());
  EXPECT_EQ(info.chunker, testing::SmallCdc());
  EXPECT_EQ(info.sha256, Sha256Of(data));

  // ChunkSource view: the map covers the blob and ReadChunk returns the bytes.
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, store->OpenBlob("img"));
  const BlobMap* map = blob.map.get();
  AlignedBuffer buf(65536);
  for (const ChunkExtent& e : map->extents) {
    ASSERT_OK(store->ReadChunk(e, buf.span()));
    EXPECT_EQ(0, std::memcmp(buf.data(), data.data() + e.blob_offset, e.length));
    for (std::size_t i = e.length; i < AlignUp(e.length); ++i)
      EXPECT_EQ(buf.data()[i], std::byte{0});
  }
  ASSERT_OK_AND_ASSIGN(VerifyReport v, store->Verify());
  EXPECT_TRUE(v.clean());
  EXPECT_EQ(v.chunks_checked, r.chunks);
}

// The engine's per-stage timing relies on this split; untimed reads stay possible.
TEST(ChunkStore, ReadChunkReportsLookupReadDecompressAndVerifyWhenAsked) {
  TempDir tmp;
  auto store = OpenWriter(tmp / "store");
  ASSERT_NE(store, nullptr);
  auto data = MixedBlob(1 << 20, 7);
  WriteFile(tmp / "in", data);
  ASSERT_OK(store->ImportBlob(tmp / "in", WithId("img")).status());
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, store->OpenBlob("img"));
  const BlobMap* map = blob.map.get();
  ASSERT_GT(map->extents.size(), 2u);
  AlignedBuffer buf(65536);
  ChunkReadTimings t;
  ChunkReadTimings after_first;
  for (const ChunkExtent& e : map->extents) {
    ASSERT_OK(store->ReadChunk(e, buf.span(), &t));
    EXPECT_EQ(0, std::memcmp(buf.data(), data.data() + e.blob_offset, e.length));
    if (&e == &map->extents.front()) after_first = t;
  }
  const std::chrono::nanoseconds zero{0};
  EXPECT_GT(t.lookup, zero);
  EXPECT_GT(t.read, zero);
  EXPECT_GT(t.decompress, zero);
  EXPECT_GT(t.verify, zero);
  // Calls add to the struct rather than overwrite it.
  EXPECT_GT(t.total(), after_first.total());
  EXPECT_GE(t.lookup, after_first.lookup);
  EXPECT_GE(t.verify, after_first.verify);
  // A chunk the index does not know still reports the lookup it did.
  ChunkExtent unknown = map->extents.front();
  unknown.key.bytes[0] ^= 0xff;
  ChunkReadTimings miss;
  EXPECT_EQ(store->ReadChunk(unknown, buf.span(), &miss).code(), StatusCode::kNotFound);
  EXPECT_GT(miss.lookup, zero);
  EXPECT_EQ(miss.read, zero);
}

TEST(ChunkStore, ReimportIsIdempotentAndOtherContentIsRefused) {
  TempDir tmp;
  auto store = OpenWriter(tmp / "store");
  auto a = RandomBytes(200000, 1), b = RandomBytes(200000, 2);
  WriteFile(tmp / "a", a);
  WriteFile(tmp / "b", b);
  ASSERT_OK(store->ImportBlob(tmp / "a", WithId("x")).status());
  ASSERT_OK_AND_ASSIGN(auto again, store->ImportBlob(tmp / "a", WithId("x")));
  EXPECT_TRUE(again.already_present);
  EXPECT_EQ(again.new_chunks, 0u);
  EXPECT_EQ(store->ImportBlob(tmp / "b", WithId("x")).status().code(), StatusCode::kAlreadyExists);
  // Without an id, the id comes from the content and repeats.
  ASSERT_OK_AND_ASSIGN(auto d1, store->ImportBlob(tmp / "b", ImportOptions{}));
  ASSERT_OK_AND_ASSIGN(auto d2, store->ImportBlob(tmp / "b", ImportOptions{}));
  EXPECT_EQ(d1.id, HexOf(Sha256Of(b)).substr(0, 32));
  EXPECT_EQ(d2.id, d1.id);
  EXPECT_TRUE(d2.already_present);
  ASSERT_OK_AND_ASSIGN(auto stats, store->Stats());
  EXPECT_EQ(stats.blobs, 2u);
}

TEST(ChunkStore, SharedContentIsStoredOnce) {
  TempDir tmp;
  auto store = OpenWriter(tmp / "store");
  auto base = RandomBytes(2 << 20, 5);
  auto variant = base;
  auto patch = RandomBytes(8192, 6);
  std::copy(patch.begin(), patch.end(), variant.begin() + (1 << 20));
  WriteFile(tmp / "a", base);
  WriteFile(tmp / "b", variant);
  ASSERT_OK_AND_ASSIGN(auto ra, store->ImportBlob(tmp / "a", WithId("a")));
  ASSERT_OK_AND_ASSIGN(auto rb, store->ImportBlob(tmp / "b", WithId("b")));
  EXPECT_LE(rb.new_chunks, 3u);  // only the chunks around the patch are new
  EXPECT_LT(rb.new_stored_bytes, 200000u);
  ASSERT_OK_AND_ASSIGN(auto stats, store->Stats());
  EXPECT_EQ(stats.blobs, 2u);
  EXPECT_EQ(stats.chunks, ra.new_chunks + rb.new_chunks);
  EXPECT_EQ(stats.logical_bytes, 4u << 20);
  EXPECT_GT(stats.dedup_ratio, 1.8);
  EXPECT_EQ(stats.packs, 1u);
  ASSERT_OK(store->ExportToPath("b", tmp / "out"));
  EXPECT_EQ(ReadFile(tmp / "out"), variant);
}

TEST(ChunkStore, BlobIdRulesAreEnforced) {
  for (std::string ok : {std::string("a"), std::string("image-1.erofs"), std::string("x:y@z"),
                         std::string(255, 'k')}) {
    EXPECT_TRUE(ChunkStore::ValidateBlobId(ok).ok()) << ok;
  }
  for (std::string bad :
       {std::string(), std::string(256, 'k'), std::string("a,b"), std::string("a/b"),
        std::string("a b"), std::string("a\tb"), std::string("a\0b", 3), std::string("a\x7f")}) {
    EXPECT_EQ(ChunkStore::ValidateBlobId(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  TempDir tmp;
  auto store = OpenWriter(tmp / "store");
  WriteFile(tmp / "in", RandomBytes(5000, 1));
  EXPECT_EQ(store->ImportBlob(tmp / "in", WithId("a,b")).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ChunkStore, EmptyMissingAndDirectoryInputsAreRejected) {
  TempDir tmp;
  auto store = OpenWriter(tmp / "store");
  WriteFile(tmp / "empty", {});
  auto empty = store->ImportBlob(tmp / "empty", WithId("e"));
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("empty"), std::string::npos);
  EXPECT_EQ(store->ImportBlob(tmp / "nope", WithId("n")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->ImportBlob(tmp.path(), WithId("d")).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto stats, store->Stats());
  EXPECT_EQ(stats.blobs, 0u);
}

TEST(ChunkStore, SecondWriterIsBusy) {
  TempDir tmp;
  auto store = OpenWriter(tmp / "store");
  auto second = ChunkStore::Open(WriterOptions(tmp / "store"));
  ASSERT_EQ(second.status().code(), StatusCode::kBusy);
  EXPECT_NE(second.status().message().find("locked by another writer (pid " +
                                           std::to_string(getpid()) + ")"),
            std::string::npos)
      << second.status().message();
  store.reset();
  EXPECT_TRUE(ChunkStore::Open(WriterOptions(tmp / "store")).ok());
}

TEST(ChunkStore, KeyCollisionWithOtherContentIsRefused) {
  TempDir tmp;
  auto store = OpenWriter(tmp / "store");
  auto data = RandomBytes(100000, 9);
  WriteFile(tmp / "in", data);
  // Pretend a chunk with the same XXH3 key but different content is already stored.
  auto first = testing::SmallCdc();
  Chunker chunker(first);
  auto lengths = chunker.SplitAll(data);
  ChunkKey key = ChunkKeyOf(std::span(data).first(lengths[0]));
  Sha256Digest other{};
  other[0] = 1;
  ASSERT_OK(store->TestOnlyPutChunkIndexRecord(key, other));
  auto r = store->ImportBlob(tmp / "in", WithId("victim"));
  ASSERT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find(key.ToHex()), std::string::npos);
  EXPECT_EQ(store->GetBlob("victim").status().code(), StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto stats, store->Stats());
  EXPECT_EQ(stats.chunks, 1u);  // only the injected record: nothing was added
}

TEST(ChunkStore, FlippedByteIsReportedAndNeverServed) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  auto store = OpenWriter(dir);
  auto shared = RandomBytes(300000, 11);
  WriteFile(tmp / "a", shared);
  WriteFile(tmp / "b", shared);
  ASSERT_OK(store->ImportBlob(tmp / "a", WithId("a")).status());
  ASSERT_OK(store->ImportBlob(tmp / "b", WithId("b")).status());
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, store->OpenBlob("a"));
  const BlobMap* map = blob.map.get();
  // Flip a payload byte in the middle of the pack (inside some chunk's record).
  const std::string pack = dir + "/packs/pack-000001.lbp";
  struct stat st {};
  ASSERT_EQ(::stat(pack.c_str(), &st), 0);
  {
    UniqueFd fd(::open(pack.c_str(), O_RDWR));
    char c;
    const off_t at = st.st_size / 2;
    ASSERT_EQ(::pread(fd.get(), &c, 1, at), 1);
    c ^= 0x5a;
    ASSERT_EQ(::pwrite(fd.get(), &c, 1, at), 1);
  }
  ASSERT_OK_AND_ASSIGN(VerifyReport v, store->Verify());
  ASSERT_EQ(v.corrupt.size(), 1u);
  EXPECT_EQ(v.corrupt[0].pack_id, 1u);
  EXPECT_EQ(v.corrupt[0].blobs, (std::vector<std::string>{"a", "b"}));
  AlignedBuffer buf(65536);
  int bad = 0;
  for (const ChunkExtent& e : map->extents) {
    Status s = store->ReadChunk(e, buf.span());
    if (e.key == v.corrupt[0].key) {
      EXPECT_EQ(s.code(), StatusCode::kCorruption);
      ++bad;
    } else {
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }
  EXPECT_EQ(bad, 1);
  EXPECT_EQ(store->ExportToPath("a", tmp / "out").code(), StatusCode::kCorruption);
  EXPECT_NE(::access((tmp / "out").c_str(), F_OK), 0);
}

TEST(ChunkStore, RemoveOfLeasedBlobIsRefused) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  auto store = OpenWriter(dir);
  WriteFile(tmp / "in", RandomBytes(50000, 1));
  ASSERT_OK(store->ImportBlob(tmp / "in", WithId("served")).status());
  {
    auto reader = ChunkStore::Open(testing::ReaderOptions(dir));
    ASSERT_OK(reader.status());
    ASSERT_OK_AND_ASSIGN(BlobLease lease, (*reader)->LeaseBlob("served"));
    Status s = store->Remove("served");
    EXPECT_EQ(s.code(), StatusCode::kBusy);
    EXPECT_NE(s.message().find("being served by a running daemon"), std::string::npos);
    EXPECT_EQ((*reader)->LeaseBlob("missing").status().code(), StatusCode::kNotFound);
  }
  const std::string lease_file = BlobLease::LockPath(dir, "served");
  EXPECT_EQ(::access(lease_file.c_str(), F_OK), 0);
  ASSERT_OK(store->Remove("served"));
  EXPECT_EQ(store->GetBlob("served").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Remove("served").code(), StatusCode::kNotFound);
  // The lease file went with the blob; a blob imported again under the id leases anew.
  EXPECT_NE(::access(lease_file.c_str(), F_OK), 0);
  ASSERT_OK(store->ImportBlob(tmp / "in", WithId("served")).status());
  auto reader = ChunkStore::Open(testing::ReaderOptions(dir));
  ASSERT_OK(reader.status());
  ASSERT_OK_AND_ASSIGN(BlobLease again, (*reader)->LeaseBlob("served"));
  EXPECT_EQ(store->Remove("served").code(), StatusCode::kBusy);
}

// After Remove unlinked a lease file, a new lease locks the file now at the path: the one
// a later Remove would try to lock.
TEST(BlobLease, AcquireAfterTheFileWasUnlinkedLocksTheNewFile) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  std::filesystem::create_directories(dir);
  ASSERT_OK_AND_ASSIGN(BlobLease first, BlobLease::Acquire(dir, "b"));
  const std::string path = BlobLease::LockPath(dir, "b");
  ASSERT_EQ(::unlink(path.c_str()), 0);  // as Remove does
  ASSERT_OK_AND_ASSIGN(BlobLease second, BlobLease::Acquire(dir, "b"));
  EXPECT_EQ(::access(path.c_str(), F_OK), 0);
  // The new file is the one a remover would lock: held, so LOCK_EX fails.
  UniqueFd probe(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(probe.valid());
  EXPECT_NE(::flock(probe.get(), LOCK_EX | LOCK_NB), 0);
}

TEST(ChunkStore, GcRunsWhileADaemonServesAndKeepsItsBlob) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  auto store = OpenWriter(dir);
  const auto served = RandomBytes(400000, 1), junk = RandomBytes(300000, 2);
  WriteFile(tmp / "served", served);
  WriteFile(tmp / "junk", junk);
  ASSERT_OK(store->ImportBlob(tmp / "served", WithId("x")).status());
  ASSERT_OK(store->ImportBlob(tmp / "junk", WithId("junk")).status());
  auto ropts = testing::ReaderOptions(dir);
  ropts.hold_serving_lock = true;
  ASSERT_OK_AND_ASSIGN(auto daemon, ChunkStore::Open(ropts));
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, daemon->OpenBlob("x"));
  AlignedBuffer buf(1 << 20);
  auto read_all = [&] {
    for (const ChunkExtent& e : blob.map->extents) {
      ASSERT_OK(daemon->ReadChunk(e, buf.span()));
      ASSERT_EQ(std::memcmp(buf.data(), served.data() + e.blob_offset, e.length), 0);
    }
  };
  read_all();  // the daemon now caches an fd of the pack gc is about to rewrite

  EXPECT_EQ(store->Remove("x").code(), StatusCode::kBusy);  // leased: stays a gc root
  ASSERT_OK(store->Remove("junk"));
  ASSERT_OK_AND_ASSIGN(GcResult gc, store->Gc(false));
  EXPECT_GT(gc.chunks_removed, 0u);
  EXPECT_EQ(gc.packs_deleted, 1u);
  EXPECT_NE(::access(PackSet::PackPath(dir, 1).c_str(), F_OK), 0);  // x's chunks moved
  read_all();
  ASSERT_OK_AND_ASSIGN(VerifyReport v, daemon->Verify());
  EXPECT_TRUE(v.clean());
}

TEST(ChunkStore, RepairRepointsACorruptChunkAndAServingReaderFollows) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  auto store = OpenWriter(dir);
  const auto data = RandomBytes(1 << 20, 9);  // incompressible: stored raw
  WriteFile(tmp / "src", data);
  ASSERT_OK(store->ImportBlob(tmp / "src", WithId("v")).status());
  const std::string pack = PackSet::PackPath(dir, 1);
  {
    auto bytes = ReadFile(pack);
    bytes[bytes.size() / 3] ^= std::byte{0x5a};
    WriteFile(pack, bytes);
  }
  ASSERT_OK_AND_ASSIGN(VerifyReport bad, store->Verify());
  ASSERT_EQ(bad.corrupt.size(), 1u);
  auto ropts = testing::ReaderOptions(dir);
  ropts.hold_serving_lock = true;
  ASSERT_OK_AND_ASSIGN(auto daemon, ChunkStore::Open(ropts));
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, daemon->OpenBlob("v"));
  AlignedBuffer buf(1 << 20);
  const ChunkKey key = bad.corrupt[0].key;
  const ChunkExtent* hit = nullptr;
  for (const ChunkExtent& e : blob.map->extents) {
    if (e.key == key) hit = &e;
  }
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(daemon->ReadChunk(*hit, buf.span()).code(), StatusCode::kCorruption);

  // A file without the chunk repairs nothing; the source does, into a new pack.
  WriteFile(tmp / "other", RandomBytes(1 << 20, 10));
  const std::vector<ChunkKey> wanted = {key};
  std::vector<std::string> sources = {tmp / "other"};
  ASSERT_OK_AND_ASSIGN(RepairResult none, store->RepairChunks(wanted, sources));
  EXPECT_EQ(none.chunks_repaired, 0u);
  EXPECT_EQ(none.not_found, wanted);
  sources.push_back(tmp / "src");
  ASSERT_OK_AND_ASSIGN(RepairResult fixed, store->RepairChunks(wanted, sources));
  EXPECT_EQ(fixed.chunks_repaired, 1u);
  EXPECT_EQ(fixed.bytes_repaired, hit->length);
  EXPECT_TRUE(fixed.not_found.empty());
  EXPECT_EQ(::access(PackSet::PackPath(dir, 2).c_str(), F_OK), 0);

  // The serving reader finds the good copy without a restart or an explicit catch-up.
  ASSERT_OK(daemon->ReadChunk(*hit, buf.span()));
  EXPECT_EQ(std::memcmp(buf.data(), data.data() + hit->blob_offset, hit->length), 0);
  ASSERT_OK_AND_ASSIGN(VerifyReport good, store->Verify());
  EXPECT_TRUE(good.clean());
  ASSERT_OK(store->ExportToPath("v", tmp / "out"));
  EXPECT_EQ(ReadFile(tmp / "out"), data);
}

TEST(ChunkStore, GcReclaimsExactlyTheUnreferencedChunks) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  auto store = OpenWriter(dir);
  auto keep = RandomBytes(1 << 20, 21), drop = RandomBytes(1 << 20, 22);
  WriteFile(tmp / "keep", keep);
  WriteFile(tmp / "drop", drop);
  ASSERT_OK_AND_ASSIGN(auto rk, store->ImportBlob(tmp / "keep", WithId("keep")));
  ASSERT_OK_AND_ASSIGN(auto rd, store->ImportBlob(tmp / "drop", WithId("drop")));
  ASSERT_OK(store->Remove("drop"));
  ASSERT_OK_AND_ASSIGN(auto before, store->Stats());

  ASSERT_OK_AND_ASSIGN(GcResult dry, store->Gc(true));
  EXPECT_EQ(dry.chunks_removed, rd.new_chunks);
  ASSERT_OK_AND_ASSIGN(auto after_dry, store->Stats());
  EXPECT_EQ(after_dry.chunks, before.chunks);
  EXPECT_EQ(after_dry.pack_file_bytes, before.pack_file_bytes);

  ASSERT_OK_AND_ASSIGN(GcResult gc, store->Gc(false));
  EXPECT_EQ(gc.chunks_removed, rd.new_chunks);
  EXPECT_EQ(gc.packs_rewritten, 1u);
  EXPECT_GT(gc.bytes_reclaimed, (1u << 20) * 9 / 10);
  ASSERT_OK_AND_ASSIGN(auto after, store->Stats());
  EXPECT_EQ(after.chunks, rk.new_chunks);
  EXPECT_LT(after.pack_file_bytes, before.pack_file_bytes - (1u << 20) * 9 / 10);
  ASSERT_OK_AND_ASSIGN(VerifyReport v, store->Verify());
  EXPECT_TRUE(v.clean());
  ASSERT_OK(store->ExportToPath("keep", tmp / "out"));
  EXPECT_EQ(ReadFile(tmp / "out"), keep);
  ASSERT_OK_AND_ASSIGN(GcResult again, store->Gc(false));
  EXPECT_EQ(again.chunks_removed, 0u);
  // Imports keep working after gc deleted the pack they were appending to.
  ASSERT_OK(store->ImportBlob(tmp / "drop", WithId("drop2")).status());
  ASSERT_OK(store->ExportToPath("drop2", tmp / "out2"));
  EXPECT_EQ(ReadFile(tmp / "out2"), drop);
}

TEST(ChunkStore, RebuildIndexRestoresBlobsAndHonorsRemovals) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  std::vector<std::vector<std::byte>> blobs;
  {
    auto store = OpenWriter(dir);
    for (int i = 0; i < 4; ++i) {
      blobs.push_back(MixedBlob(300000 + i * 5000, 30 + i));
      WriteFile(tmp / "in", blobs.back());
      ASSERT_OK(store->ImportBlob(tmp / "in", WithId("b" + std::to_string(i))).status());
    }
    ASSERT_OK(store->Remove("b1"));
    ASSERT_OK(store->Remove("b2"));
    WriteFile(tmp / "in", blobs[2]);
    ASSERT_OK(store->ImportBlob(tmp / "in", WithId("b2")).status());  // re-added after rm
    ASSERT_OK(store->Remove("b3"));
    ASSERT_OK(store->Gc(false).status());  // moves records into a new pack
  }
  std::filesystem::remove_all(dir + "/index");
  ASSERT_OK_AND_ASSIGN(RebuildReport rep, ChunkStore::RebuildIndex(WriterOptions(dir)));
  EXPECT_EQ(rep.blobs, 2u);
  EXPECT_TRUE(rep.problems.empty()) << rep.problems[0];
  auto store = OpenWriter(dir);
  ASSERT_OK_AND_ASSIGN(auto list, store->ListBlobs());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "b0");
  EXPECT_EQ(list[1].id, "b2");
  for (int i : {0, 2}) {
    ASSERT_OK(store->ExportToPath("b" + std::to_string(i), tmp / "out"));
    EXPECT_EQ(ReadFile(tmp / "out"), blobs[i]);
  }
  ASSERT_OK_AND_ASSIGN(VerifyReport v, store->Verify());
  EXPECT_TRUE(v.clean());
}

TEST(ChunkStore, RebuildSkipsATruncatedTailRecord) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  auto data = RandomBytes(200000, 3);
  {
    auto store = OpenWriter(dir);
    WriteFile(tmp / "in", data);
    ASSERT_OK(store->ImportBlob(tmp / "in", WithId("ok")).status());
  }
  // Simulate a crash mid-append: half a record at the end of the pack.
  const std::string pack = dir + "/packs/pack-000001.lbp";
  {
    UniqueFd fd(::open(pack.c_str(), O_WRONLY | O_APPEND));
    auto junk = RandomBytes(100, 4);
    std::memcpy(junk.data(), "LBPR", 4);
    ASSERT_EQ(::write(fd.get(), junk.data(), junk.size()), 100);
  }
  ASSERT_OK_AND_ASSIGN(RebuildReport rep, ChunkStore::RebuildIndex(WriterOptions(dir)));
  EXPECT_EQ(rep.blobs, 1u);
  ASSERT_FALSE(rep.problems.empty());
  auto store = OpenWriter(dir);  // truncates the debris
  ASSERT_OK(store->ExportToPath("ok", tmp / "out"));
  EXPECT_EQ(ReadFile(tmp / "out"), data);
  WriteFile(tmp / "in2", RandomBytes(100000, 5));
  ASSERT_OK(store->ImportBlob(tmp / "in2", WithId("after")).status());
  ASSERT_OK_AND_ASSIGN(VerifyReport v, store->Verify());
  EXPECT_TRUE(v.clean());
}

TEST(ChunkStore, ReaderWithoutWriterAndAfterWriterCommits) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  auto writer = OpenWriter(dir);
  WriteFile(tmp / "a", RandomBytes(100000, 1));
  ASSERT_OK(writer->ImportBlob(tmp / "a", WithId("a")).status());
  auto reader = ChunkStore::Open(testing::ReaderOptions(dir));
  ASSERT_OK(reader.status());
  WriteFile(tmp / "b", RandomBytes(100000, 2));
  ASSERT_OK(writer->ImportBlob(tmp / "b", WithId("b")).status());
  // The reader catches up on a miss.
  ASSERT_OK_AND_ASSIGN(OpenedBlob blob, (*reader)->OpenBlob("b"));
  const BlobMap* map = blob.map.get();
  EXPECT_EQ(map->size, 100000u);
  EXPECT_EQ((*reader)->ImportBlob(tmp / "a", WithId("c")).status().code(),
            StatusCode::kInvalidArgument);
  writer.reset();
  ASSERT_OK((*reader)->ExportToPath("b", tmp / "out"));
  EXPECT_EQ(ReadFile(tmp / "out"), RandomBytes(100000, 2));
}

}  // namespace
}  // namespace lazyblob
