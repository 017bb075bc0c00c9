// Power cut, not just kill -9 (issue 14, item 9). CrashSafety.KillNineAtRandomPoints keeps
// the page cache, so it never tests where the store syncs; this test drops every write
// not yet made durable.
//
// The model of a power cut (PowerCutRecorder, tests/store/power_cut_recorder.h):
//  - a file holds exactly the bytes it held at its last fsync/fdatasync; whatever was
//    written, appended or truncated since is lost (packs and RocksDB's files are
//    append-only; a pack truncated and then synced keeps its longer self if the cut falls
//    between the two);
//  - a directory holds exactly the entries it held at its last fsync: a created, renamed
//    or unlinked name counts only once its directory is fsynced;
//  - nothing else survives. Lock files and RocksDB's info LOG are never synced and come
//    back empty or not at all; they hold no state and are recreated on open.
// The layer sits under the store's own syncs (ChunkStoreOptions::test_file_ops) and under
// RocksDB's (test_index_env: a rocksdb::FileSystemWrapper).
//
// One deterministic run of a store's life (create; import, rm, repair, gc; a registry pull's
// PutChunks and ImportChunkedBlob; a pull that fails and rolls back; close and reopen)
// records every sync call as a cut point: the durable image a power cut just before it
// would leave (plus the end). The durable image only changes at a sync, so these are all
// the states a power cut can leave. Each is written to a fresh directory and checked:
//  - a reader (the daemon, first up after the reboot) opens it once a blob was committed;
//  - a writer opens it (recovery: uncommitted pack tails and packs go);
//  - both see every blob an operation finished before the cut, and none it removed; an
//    operation in flight is either wholly there or not at all; a failed one not at all;
//    every blob they see exports byte-identical to what was imported; verify is clean;
//  - chunks PutChunks committed are there (until a gc may drop them);
//  - the recovered writer imports and exports a new blob;
//  - a second cut during that recovery, once it has synced pack changes (tails
//    truncated, uncommitted packs deleted), leaves a store the next writer recovers.
// The cut points are listed in the output, with how many each operation has. The first
// failing cut ends the test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>

#include "core/unique_fd.h"
#include "power_cut_recorder.h"
#include "store/chunk_store.h"
#include "store_test_util.h"

namespace lazyblob {
namespace {

using testing::CutPoint;
using testing::PowerCutRecorder;
using testing::RandomBytes;
using testing::TempDir;
using testing::WriteFile;

// The plain build checks every cut point; the ASan build, a few times slower, checks
// every third and the TSan build every fifth (all are still recorded and listed).
#if defined(__SANITIZE_THREAD__)
constexpr std::size_t kCheckEvery = 5;
#elif defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kCheckEvery = 3;
#else
constexpr std::size_t kCheckEvery = 1;
#endif

constexpr int kAbsent = -1;  // a blob's outcome: absent, or the index of its content
constexpr int kContents = 10;
constexpr int kAfterTheCut = kContents - 1;

// Half compressible text, half random: both codecs occur.
std::vector<std::byte> MixedBlob(std::size_t n, std::uint64_t seed) {
  auto text = RandomBytes(n / 2, seed, true);
  auto random = RandomBytes(n - n / 2, seed + 100);
  text.insert(text.end(), random.begin(), random.end());
  return text;
}

// OK if blob `id` exports exactly `want` (through a memfd: the checks export a lot).
Status ExportEquals(ChunkStore* store, const std::string& id, const std::vector<std::byte>& want) {
  UniqueFd fd(::memfd_create("export", MFD_CLOEXEC));
  if (!fd) return Status::FromErrno(errno, "memfd_create");
  LB_RETURN_IF_ERROR(store->Export(id, fd.get()));
  std::vector<std::byte> got(want.size() + 1);
  std::size_t n = 0;
  for (ssize_t r = 1; r > 0 && n < got.size(); n += static_cast<std::size_t>(r)) {
    r = ::pread(fd.get(), got.data() + n, got.size() - n, static_cast<off_t>(n));
    if (r < 0) return Status::FromErrno(errno, "read the export");
  }
  if (n != want.size() || std::memcmp(got.data(), want.data(), n) != 0) {
    return Corruption("exports other bytes (" + std::to_string(n) + " of them)");
  }
  return Status::Ok();
}

// One operation of the recorded run and what it did to one blob.
struct Op {
  std::string what;
  std::string id;              // the blob it changes; empty for none
  int content = kAbsent;       // the blob's outcome once the operation is done
  bool changes = true;         // false: failed, the blob stays as it was
  std::size_t start = 0;       // syncs recorded when it started
  std::size_t end = 0;         // ... and when it returned
  std::vector<ChunkKey> keys;  // PutChunks: the chunks it committed
};

class PowerCut : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_ = tmp_ / "disk";
    std::filesystem::create_directory(disk_);
    recorder_ = std::make_unique<PowerCutRecorder>(disk_);
    // Blobs a..d, h, i imported from files; e, f, g pulled from a source store; the last
    // content is imported after each cut.
    for (int i = 0; i < kContents; ++i) contents_.push_back(MixedBlob(250000 + 40000 * i, 40 + i));
    std::copy_n(contents_[0].begin(), 150000, contents_[1].begin());  // b shares with a
    std::copy_n(contents_[2].begin(), 150000, contents_[4].begin());  // e shares with c
    for (int i = 0; i < kContents; ++i) WriteFile(tmp_ / ("in" + std::to_string(i)), contents_[i]);
    source_ = ChunkStore::Open(testing::WriterOptions(tmp_ / "source")).value();
    for (int i : {4, 5, 6}) {
      ImportOptions o;
      o.id = Name(i);
      ASSERT_OK(source_->ImportBlob(tmp_ / ("in" + std::to_string(i)), o).status());
    }
  }

  static std::string Name(int content) { return std::string(1, static_cast<char>('a' + content)); }

  ChunkStoreOptions RecordedOptions() {
    ChunkStoreOptions o = testing::WriterOptions(disk_ + "/store");
    o.pack_target_bytes = 1 << 20;  // the minimum: imports span packs
    o.test_file_ops = recorder_.get();
    o.test_index_env = recorder_->rocksdb_env();
    return o;
  }

  void OpenRecorded() {
    auto opened = ChunkStore::Open(RecordedOptions());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  void Reopen() {
    Run("close and reopen", "", kAbsent, true, [&](Op*) {
      store_.reset();
      OpenRecorded();
    });
    ASSERT_NE(store_, nullptr);
  }

  // Runs `fn` as operation `what`, which leaves blob `id` as `content` if `changes`.
  template <typename Fn>
  void Run(const std::string& what, const std::string& id, int content, bool changes, Fn fn) {
    recorder_->SetPhase(what);
    Op op{what, id, content, changes, recorder_->syncs(), 0, {}};
    fn(&op);
    op.end = recorder_->syncs();
    ops_.push_back(std::move(op));
  }
  void Import(int content) {
    Run("import " + Name(content), Name(content), content, true, [&](Op*) {
      ImportOptions o;
      o.id = Name(content);
      ASSERT_OK(store_->ImportBlob(tmp_ / ("in" + std::to_string(content)), o).status());
    });
  }
  void Remove(int content) {
    Run("rm " + Name(content), Name(content), kAbsent, true,
        [&](Op*) { ASSERT_OK(store_->Remove(Name(content))); });
  }
  void Gc() {
    Run("gc", "", kAbsent, true, [&](Op*) { ASSERT_OK(store_->Gc(false).status()); });
  }
  // RepairChunks of every chunk of blob `content` from its source file (verify --repair):
  // the chunks are not damaged here, so every cut must leave them readable, whether at
  // the old records or at the new copies.
  void Repair(int content) {
    Run("repair " + Name(content), "", kAbsent, true, [&](Op*) {
      std::set<ChunkKey> keys;
      const auto map = store_->OpenBlob(Name(content)).value().map;
      for (const ChunkExtent& e : map->extents) keys.insert(e.key);
      const std::vector<ChunkKey> wanted(keys.begin(), keys.end());
      const std::vector<std::string> sources = {tmp_ / ("in" + std::to_string(content))};
      auto r = store_->RepairChunks(wanted, sources);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->chunks_repaired, wanted.size()) << r->not_found.size() << " not found";
    });
  }
  // ImportChunkedBlob from the source store, as `lazyblob pull` does; `good` = false
  // claims a wrong blob SHA-256, so the import syncs its chunks and then rolls back.
  void Pull(int content, bool good) {
    const std::string id = Name(content);
    Run(std::string(good ? "pull " : "failed pull ") + id, id, content, good, [&](Op*) {
      BlobInfo info = source_->GetBlob(id).value();
      if (!good) info.sha256[0] ^= 1;
      auto map = source_->OpenBlob(id).value().map;
      auto r = store_->ImportChunkedBlob(
          info, map->extents, [&](const auto& missing, const ChunkSink& sink) {
            for (const ChunkExtent& e : missing) {
              LB_ASSIGN_OR_RETURN(StoredChunk c, source_->ReadStoredChunk(e.key));
              LB_RETURN_IF_ERROR(sink(std::move(c)));
            }
            return Status::Ok();
          });
      EXPECT_EQ(r.status().code(), good ? StatusCode::kOk : StatusCode::kCorruption)
          << r.status().ToString();
    });
  }
  void PutChunksOf(int content) {
    Run("put chunks of " + Name(content), "", kAbsent, true, [&](Op* op) {
      std::vector<StoredChunk> chunks;
      std::set<ChunkKey> seen;
      const auto map = source_->OpenBlob(Name(content)).value().map;
      for (const ChunkExtent& e : map->extents) {
        if (!seen.insert(e.key).second) continue;
        auto c = source_->ReadStoredChunk(e.key);
        ASSERT_TRUE(c.ok()) << c.status().ToString();
        chunks.push_back(std::move(c).value());
      }
      ASSERT_OK(store_->PutChunks(chunks).status());
      op->keys.assign(seen.begin(), seen.end());
    });
  }

  // The outcomes blob `id` may have in a state where `syncs` sync calls took effect.
  std::set<int> Allowed(const std::string& id, std::size_t syncs) const {
    int now = kAbsent;
    std::set<int> allowed = {now};
    for (const Op& op : ops_) {
      if (op.id != id || op.start >= syncs) continue;
      if (op.end <= syncs) {
        now = op.changes ? op.content : now;
        allowed = {now};
      } else if (op.changes) {
        allowed.insert(op.content);  // in flight: all or nothing
      }
    }
    return allowed;
  }

  // What `store` holds for each blob id of the run (kAbsent or the content index).
  std::map<std::string, int> Outcomes(ChunkStore* store, const std::string& where,
                                      std::size_t syncs) {
    std::map<std::string, int> out;
    for (int i = 0; i < kAfterTheCut; ++i) {
      const std::string id = Name(i);
      auto info = store->GetBlob(id);
      int outcome = kAbsent;
      if (info.ok()) {
        Status s = ExportEquals(store, id, contents_[i]);
        EXPECT_TRUE(s.ok()) << where << ": export " << id << ": " << s.ToString();
        outcome = i;
      } else {
        EXPECT_EQ(info.status().code(), StatusCode::kNotFound) << where << ": " << id;
      }
      EXPECT_TRUE(Allowed(id, syncs).count(outcome))
          << where << ": blob " << id << (outcome == kAbsent ? " is missing" : " is present");
      out[id] = outcome;
    }
    auto report = store->Verify();
    EXPECT_TRUE(report.ok()) << where << ": " << report.status().ToString();
    if (report.ok()) {
      EXPECT_TRUE(report->clean()) << where << ": verify: " << report->corrupt.size()
                                   << " corrupt, " << report->missing.size() << " missing";
    }
    return out;
  }

  void CheckCut(const CutPoint& cut);
  void CheckRecoveryCuts(const std::vector<CutPoint>& cuts, std::size_t j);
  // The checks work on scratch copies: their syncs would only slow the test down.
  ChunkStoreOptions Unsynced(ChunkStoreOptions o) {
    o.test_file_ops = &skip_syncs_;
    o.test_index_env = skip_syncs_.rocksdb_env();
    return o;
  }

  TempDir tmp_;
  std::string disk_;
  std::unique_ptr<PowerCutRecorder> recorder_;
  testing::SkipSyncs skip_syncs_;
  std::vector<std::vector<std::byte>> contents_;
  std::unique_ptr<ChunkStore> source_, store_;
  std::vector<Op> ops_;
  std::size_t recovery_cuts_checked_ = 0;
};

void PowerCut::CheckCut(const CutPoint& cut) {
  const std::string dir = tmp_ / "cut";
  std::filesystem::remove_all(dir);
  ASSERT_OK(PowerCutRecorder::Materialize(cut.image, dir));
  const std::size_t j = cut.syncs_before;
  bool committed = false;  // has an operation that changes a blob finished?
  for (const Op& op : ops_) committed |= op.end <= j && !op.id.empty() && op.changes;

  std::optional<std::map<std::string, int>> seen_by_reader;
  {
    auto reader = ChunkStore::Open(Unsynced(testing::ReaderOptions(dir + "/store")));
    if (reader.ok()) {
      seen_by_reader = Outcomes(reader->get(), "reader", j);
    } else {
      EXPECT_FALSE(committed) << "reader: " << reader.status().ToString();
    }
  }
  // The writer's recovery (truncating uncommitted pack tails, deleting uncommitted
  // packs) syncs too: its own syncs are recorded, for CheckRecoveryCuts.
  PowerCutRecorder recovery(dir);
  ChunkStoreOptions wo = Unsynced(testing::WriterOptions(dir + "/store"));
  wo.test_file_ops = &recovery;
  auto opened = ChunkStore::Open(wo);
  ASSERT_TRUE(opened.ok()) << "writer: " << opened.status().ToString();
  const std::vector<CutPoint> recovery_cuts = recovery.CutPoints();
  ChunkStore* writer = opened->get();
  auto seen_by_writer = Outcomes(writer, "writer", j);
  if (seen_by_reader) {
    EXPECT_EQ(*seen_by_reader, seen_by_writer);
  }
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (ops_[i].keys.empty() || ops_[i].end > j) continue;
    bool gc_started = false;
    for (std::size_t k = i + 1; k < ops_.size(); ++k) {
      gc_started |= ops_[k].what == "gc" && ops_[k].start < j;
    }
    if (gc_started) continue;
    for (const ChunkKey& key : ops_[i].keys) {
      EXPECT_TRUE(writer->ReadStoredChunk(key).ok()) << ops_[i].what;
    }
  }
  ImportOptions o;
  o.id = "after-the-cut";
  ASSERT_OK(writer->ImportBlob(tmp_ / ("in" + std::to_string(kAfterTheCut)), o).status());
  Status exported = ExportEquals(writer, o.id, contents_[kAfterTheCut]);
  EXPECT_TRUE(exported.ok()) << "after the cut: " << exported.ToString();
  opened->reset();
  CheckRecoveryCuts(recovery_cuts, j);
}

// A second power cut while the writer recovers from cut `j`, once recovery has synced
// pack changes: the next writer must recover from that too. (RocksDB's syncs during
// the recovery are not recorded: its files stay as cut `j` left them, a state it
// recovers from anyway.)
void PowerCut::CheckRecoveryCuts(const std::vector<CutPoint>& cuts, std::size_t j) {
  bool packs_synced = false;  // has recovery synced a pack or packs/ before this cut?
  for (const CutPoint& cut : cuts) {
    if (cut.syncs_before > 0) {
      const std::string& last = cuts[cut.syncs_before - 1].before;
      packs_synced |= last.find("packs") != std::string::npos;
    }
    if (!packs_synced) continue;
    SCOPED_TRACE("cut during recovery, before " + cut.before);
    ++recovery_cuts_checked_;
    const std::string dir = tmp_ / "cut-in-recovery";
    std::filesystem::remove_all(dir);
    ASSERT_OK(PowerCutRecorder::Materialize(cut.image, dir));
    auto writer = ChunkStore::Open(Unsynced(testing::WriterOptions(dir + "/store")));
    ASSERT_TRUE(writer.ok()) << "writer: " << writer.status().ToString();
    Outcomes(writer->get(), "writer after a cut in recovery", j);
  }
}

TEST_F(PowerCut, EverySyncPointOfImportRmGcAndPullLeavesACommittedStore) {
  Run("create store", "", kAbsent, true, [&](Op*) { OpenRecorded(); });
  ASSERT_NE(store_, nullptr);
  Import(0);
  Import(1);
  Import(2);
  Remove(0);
  Import(3);
  Repair(2);
  Gc();
  Pull(4, true);
  PutChunksOf(5);
  Pull(5, true);
  Pull(6, false);
  Remove(1);
  Reopen();
  Remove(2);
  Gc();
  Import(7);
  Import(0);  // again, after its removal and a gc
  Import(8);
  Reopen();
  Pull(6, true);  // g, with its true SHA-256 this time
  Remove(3);
  Remove(4);
  Remove(7);
  Gc();
  store_.reset();
  recorder_->SetPhase("closed");

  const std::vector<CutPoint> cuts = recorder_->CutPoints();
  std::map<std::string, int> per_phase;
  for (const CutPoint& cut : cuts) ++per_phase[cut.phase];
  std::cout << cuts.size() << " cut points:";
  for (const auto& [phase, n] : per_phase) std::cout << " " << phase << " " << n << ";";
  std::cout << "\n";
  for (const CutPoint& cut : cuts) {
    std::cout << "cut " << cut.syncs_before << " [" << cut.phase << "] before " << cut.before
              << "\n";
  }
  std::cout << std::flush;
  std::size_t checked = 0;
  for (const CutPoint& cut : cuts) {
    if (cut.syncs_before % kCheckEvery != 0 && &cut != &cuts.back()) continue;
    ++checked;
    SCOPED_TRACE("cut " + std::to_string(cut.syncs_before) + " [" + cut.phase + "] before " +
                 cut.before);
    CheckCut(cut);
    if (HasFailure()) return;  // the first failing cut says enough
  }
  std::cout << "checked " << checked << " cut points and " << recovery_cuts_checked_
            << " cuts during their recovery\n";
  EXPECT_GE(cuts.size(), 100u);
}

}  // namespace
}  // namespace lazyblob
