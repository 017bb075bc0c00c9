// ChunkStore::Impl: the state behind a ChunkStore, shared by the .cc files that
// implement its operations (chunk_store.cc: open and reads; chunk_store_import.cc:
// ImportBlob; chunk_store_admin.cc: verify, export, remove, gc; chunk_store_rebuild.cc).
// Internal to store/.
//
// Thread-safety: `index` and `packs` are thread-safe. `writer`, `meta.next_seq` and the
// pack files' growth are guarded by writer_mu (held for a whole write operation).
#ifndef LAZYBLOB_STORE_CHUNK_STORE_IMPL_H_
#define LAZYBLOB_STORE_CHUNK_STORE_IMPL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/unique_fd.h"
#include "store/chunk_store.h"
#include "store/pack_scanner.h"
#include "store/pack_set.h"
#include "store/pack_writer.h"
#include "store/store_index.h"

namespace lazyblob {

class ChunkStore::Impl {
 public:
  ChunkStoreOptions options;
  UniqueFd writer_lock;   // writer: LOCK_EX on <store>/LOCK
  UniqueFd serving_lock;  // daemon: LOCK_SH on <store>/SERVING
  std::unique_ptr<StoreIndex> index;
  std::unique_ptr<PackSet> packs;
  std::string secondary_dir;  // reader: removed on close

  std::mutex writer_mu;
  std::unique_ptr<PackWriter> writer;  // writer only; guarded by writer_mu
  StoreMeta meta;                      // next_seq guarded by writer_mu

  ~Impl();

  Status RequireWriter(std::string_view what) const;
  // A reader (a RocksDB secondary) picks up the writer's commits; a writer has them all.
  Status CatchUpIfReader() { return writer == nullptr ? index->CatchUp() : Status::Ok(); }
  // Looks something up in the index; when a reader misses and `catch_up` is set, it
  // catches up with the writer (the commit may be newer than its last catch-up) and looks
  // again. `lookup` returns Result<std::optional<T>>.
  template <typename Lookup>
  auto LookUp(const Lookup& lookup, bool catch_up) -> decltype(lookup()) {
    auto found = lookup();
    if (!found.ok() || found->has_value() || !catch_up || writer != nullptr) return found;
    LB_RETURN_IF_ERROR(index->CatchUp());
    return lookup();
  }
  // Blob map from the index (one catch-up on a miss when `catch_up`).
  Result<std::shared_ptr<const BlobMap>> LoadMap(std::string_view id, bool catch_up);
  // Chunk location (one catch-up on a miss when `catch_up`); kNotFound when absent.
  Result<ChunkLocation> Locate(const ChunkKey& key, bool catch_up);
  // Locates the chunk and runs `read` on its location. When `read` finds the pack gone
  // (kNotFound: gc or EvictPacks moved the chunk since it was located) the pack's fd is
  // dropped, a reader catches up with the primary, and `read` runs again on the new
  // location, as long as the location keeps changing (FORMAT.md "gc while a daemon
  // serves"). A kCorruption is looked up again the same way (a repair may have repointed
  // the chunk). Lookup time goes to `timings` (optional).
  using ReadAtFn = std::function<Status(const ChunkLocation& loc)>;
  Status ReadLocated(const ChunkKey& key, const ReadAtFn& read, ChunkReadTimings* timings);

  Result<ImportResult> Import(const std::string& path, const ImportOptions& options,
                              const ImportProgress& progress);
  Result<PutChunksResult> PutChunks(std::span<const StoredChunk> chunks);
  Result<ImportResult> ImportChunked(const BlobInfo& info, const std::vector<ChunkExtent>& extents,
                                     const ChunkSupplier& supply);
  Result<VerifyReport> Verify(const std::optional<std::string>& blob_id,
                              const VerifyProgress& progress);
  // Verify's reads: checks each chunk of `todo` in pack order (one that a gc moved
  // meanwhile where it is now; one it collected, referenced by no blob of `users`, not at
  // all). Damage goes to report.corrupt, with the blobs `users` lists for the chunk; other
  // read errors are returned.
  using ChunkUsers = std::unordered_map<ChunkKey, std::vector<std::string>, ChunkKeyHash>;
  Status VerifyChunks(std::vector<std::pair<ChunkKey, ChunkLocation>> todo, const ChunkUsers& users,
                      const VerifyProgress& progress, VerifyReport& report);
  Status Export(std::string_view blob_id, int out_fd);
  Status Remove(std::string_view blob_id);
  Result<GcResult> Gc(bool dry_run);
  Result<RepairResult> Repair(std::span<const ChunkKey> wanted,
                              std::span<const std::string> sources);
  Result<EvictResult> EvictPacks(std::uint64_t target_bytes, const KeepChunkFn& pinned);

  // The tail of every path that stores a new blob (Import, ImportChunked); the caller holds
  // writer_mu and has appended the blob's new chunks. Appends `manifest` (its seq and
  // creation time set here), syncs the packs, and commits one index batch: the chunks
  // `put_chunks` adds, the blob and its map, the next seq and the pack ends. Returns the
  // bytes the manifest record took; on an error the caller rolls the writer back.
  Result<std::uint64_t> CommitBlob(BlobManifest manifest,
                                   const std::function<void(StoreIndex::Batch&)>& put_chunks);

  // Gc's and EvictPacks' machinery (chunk_store_gc.cc); the caller holds writer_mu. Copies
  // the records of `pack_ids` that stay (chunks `keep` says yes to and that the index
  // places there, the manifests in `live_manifests`, tombstones of ids not live) into a
  // new pack, syncs it, commits one batch repointing them, deleting the other chunks'
  // entries and forgetting the old packs, then unlinks those (FORMAT.md "Write order").
  // kCorruption, nothing changed, when a record that stays could not be read: dropping its
  // pack would turn a damaged chunk or manifest into a missing one.
  using LiveManifests = std::map<std::pair<std::uint32_t, std::uint64_t>, std::string>;
  struct RewriteOutcome {
    std::uint64_t old_bytes = 0;  // file sizes of the rewritten packs
    std::uint64_t new_bytes = 0;  // bytes copied forward
    std::uint64_t chunks_kept = 0, chunks_dropped = 0, dropped_bytes = 0;
  };
  Result<RewriteOutcome> RewritePacks(const std::vector<std::uint32_t>& pack_ids,
                                      const KeepChunkFn& keep, const LiveManifests& live_manifests);
  // What RewritePacks copied of one pack.
  struct Copied {
    std::unordered_set<ChunkKey, ChunkKeyHash> chunks;
    std::set<std::uint64_t> manifest_offsets;
  };
  Status CopyRecordForward(std::uint32_t pack, const ScannedRecord& record, const KeepChunkFn& keep,
                           const LiveManifests& live_manifests, StoreIndex::Batch& batch,
                           RewriteOutcome& out, Copied& copied);
  // kCorruption unless every record of `pack` that stays was copied; stages the deletion
  // of the chunk entries that go (by the index, not by what the scan could read).
  Status FinishPack(std::uint32_t pack,
                    const std::vector<std::pair<ChunkKey, ChunkLocation>>& indexed,
                    const KeepChunkFn& keep, const LiveManifests& live_manifests,
                    const Copied& copied, const std::vector<std::string>& problems,
                    StoreIndex::Batch& batch, RewriteOutcome& out);
  // The live blobs' manifest records, for RewritePacks.
  Result<LiveManifests> LiveManifestRecords();
};

// Rebuilds <store>/index from the packs (chunk_store_rebuild.cc). The caller holds the
// writer LOCK and has no index open.
Result<RebuildReport> RebuildIndexFromPacks(const ChunkStoreOptions& options);

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_CHUNK_STORE_IMPL_H_
