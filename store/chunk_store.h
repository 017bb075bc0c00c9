// ChunkStore: the deduplicating, content-addressed chunk store (store/FORMAT.md).
//
// A store directory holds append-only pack files (packs/pack-NNNNNN.lbp) with
// self-describing records (chunks, blob manifests, removal tombstones) and a RocksDB
// index (index/) that can always be rebuilt from the packs (RebuildIndex).
//
// Two ways to open it (ChunkStoreOptions::writable):
//  - writer (the `lazyblob` tool): takes an exclusive flock on <store>/LOCK; a second
//    writer gets kBusy "store DIR is locked by another writer (pid N)". Only a writer may
//    ImportBlob / Remove / Gc. A writer can also read.
//  - reader (the daemon, verify/export tools): opens RocksDB as a secondary instance, so
//    it keeps reading while a writer imports. OpenBlob/ReadChunk catch up with the
//    writer once on a miss. Works with or without a running writer.
//
// Serving safety: a daemon opens with hold_serving_lock (LOCK_SH on <store>/SERVING) and
// holds a BlobLease per blob it has open (OpenBlob's hold). Remove of a leased blob fails
// with kBusy; Gc runs while daemons serve: it never drops a chunk a blob map references,
// and readers follow records it moves (FORMAT.md "gc while a daemon serves").
//
// Crash safety: pack bytes are written and fsynced before the index batch that refers
// to them (sync=true); a blob's record is committed last. A crash at any point leaves a
// store that verifies clean; the writer truncates uncommitted pack tails when it opens.
//
// Thread-safety: all methods are thread-safe. OpenBlob/ReadChunk/LeaseBlob never take a
// store-wide lock (many daemon workers read at once). Writer operations (ImportBlob,
// Remove, Gc) are serialized with each other. Returned BlobMaps are immutable and
// independent of the store's lifetime.
#ifndef LAZYBLOB_STORE_CHUNK_STORE_H_
#define LAZYBLOB_STORE_CHUNK_STORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/chunk_source.h"
#include "core/status.h"
#include "store/blob_info.h"
#include "store/blob_lease.h"
#include "store/chunker.h"
#include "store/pack_format.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace lazyblob {

class FileOps;

struct ChunkStoreOptions {
  std::string path;                // the store directory
  bool writable = false;           // writer (exclusive LOCK) or secondary reader
  bool create_if_missing = false;  // writer only: create the directory and an empty store
  // Recorded in the store's meta at creation; the default for ImportOptions::chunker.
  ChunkerOptions default_chunker;
  // Reader only: hold LOCK_SH on <store>/SERVING while open (the daemon sets this).
  bool hold_serving_lock = false;
  // Reader only: RocksDB secondary directory. Default: a new private one made with mkdtemp
  // under $TMPDIR or /tmp (lazyblob-secondary-<pid>-XXXXXX, mode 0700), removed on close;
  // those that readers killed with -9 left behind are removed at the next open. A named
  // one is created 0700 if missing; if it exists it must be a directory of this user,
  // closed to others and holding no symlinks, else Open fails with kPermissionDenied.
  std::string secondary_path;
  // A writer starts a new pack once the current one is at least this big.
  std::uint64_t pack_target_bytes = 1ull << 30;
  // Threads hashing and compressing during import; 0 = hardware concurrency.
  int import_threads = 0;
  // Test-only hooks (tests/store/power_cut_test.cc); production leaves both null.
  // test_file_ops: the writer's fdatasync/fsync calls (store/file_ops.h); null = the
  // system calls. test_index_env: the RocksDB Env of the index; null = RocksDB's default.
  // Borrowed: both must outlive the store.
  FileOps* test_file_ops = nullptr;
  rocksdb::Env* test_index_env = nullptr;

  Status Validate() const;
};

struct ImportOptions {
  // Blob id: 1..255 bytes, no ',', '/', NUL, whitespace or control characters.
  // Empty: derived from the content (first 32 hex digits of the blob's SHA-256).
  std::string id;
  std::optional<ChunkerOptions> chunker;  // default: the store's default chunker
  int zstd_level = 3;                     // 1..19; chunks that do not shrink stay raw

  Status Validate() const;
};

// Called once per chunk, one call at a time (possibly on an import worker thread),
// with monotonically growing bytes_done.
using ImportProgress = std::function<void(std::uint64_t bytes_done, std::uint64_t bytes_total)>;

struct ImportResult {
  std::string id;
  std::uint64_t size = 0;
  std::uint64_t chunks = 0;            // chunks in the blob's map
  std::uint64_t new_chunks = 0;        // chunks not in the store before
  std::uint64_t new_stored_bytes = 0;  // pack bytes written for them (records included)
  std::uint64_t new_bytes = 0;         // uncompressed bytes of those new chunks; size - new_bytes
                                       // were reused (already stored, or repeated in the blob)
  bool already_present = false;        // same id + same content was already stored
};

// One chunk as a pack record keeps it: what `lazyblob push` uploads and what chunks
// fetched from elsewhere (a registry) are inserted as. Codec values are FORMAT.md's.
struct StoredChunk {
  ChunkKey key;           // XXH3-128 of the raw bytes
  Sha256Digest sha256{};  // of the raw bytes
  Codec codec = Codec::kRaw;
  std::uint32_t raw_len = 0;          // uncompressed bytes
  std::vector<std::uint8_t> payload;  // raw bytes, or one zstd frame of raw_len bytes
};

struct PutChunksResult {
  std::uint64_t new_chunks = 0;        // chunks the store did not have
  std::uint64_t new_stored_bytes = 0;  // pack bytes written for them (records included)
};

// Hands chunks to ImportChunkedBlob; thread-safe (it may be called from many threads at
// once). A chunk that fails verification is kCorruption and is never stored.
using ChunkSink = std::function<Status(StoredChunk chunk)>;
// Supplies the chunks ImportChunkedBlob lacks: must pass each key of `missing` to `sink`
// (in any order, from any threads) before it returns OK.
using ChunkSupplier =
    std::function<Status(const std::vector<ChunkExtent>& missing, const ChunkSink& sink)>;

struct StoreStats {
  std::uint64_t blobs = 0;
  std::uint64_t chunks = 0;         // unique chunks in the index
  std::uint64_t logical_bytes = 0;  // sum of blob sizes
  std::uint64_t unique_bytes = 0;   // sum of raw lengths of unique chunks
  std::uint64_t stored_bytes = 0;   // sum of stored (compressed) payload lengths
  double dedup_ratio = 1.0;         // logical_bytes / unique_bytes
  double compression_ratio = 1.0;   // unique_bytes / stored_bytes
  std::uint64_t packs = 0;
  std::uint64_t pack_file_bytes = 0;  // sizes of all pack files
};

struct CorruptChunk {
  ChunkKey key;
  std::uint32_t pack_id = 0;
  std::uint64_t offset = 0;        // of the record in the pack
  std::string reason;              // "payload hash mismatch", "header checksum", ...
  std::vector<std::string> blobs;  // ids of blobs whose maps use this chunk
};

struct MissingChunk {
  ChunkKey key;
  std::vector<std::string> blobs;  // blobs that reference a chunk the index lacks
};

struct VerifyReport {
  std::uint64_t blobs_checked = 0;
  std::uint64_t chunks_checked = 0;
  std::vector<CorruptChunk> corrupt;
  std::vector<MissingChunk> missing;
  bool clean() const { return corrupt.empty() && missing.empty(); }
};

// chunks_done / chunks_total, from the verifying thread.
using VerifyProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct GcResult {
  bool dry_run = false;
  std::uint64_t chunks_removed = 0;
  std::uint64_t bytes_reclaimed = 0;  // pack file bytes freed (or that would be)
  std::uint64_t packs_rewritten = 0;  // packs copied without their dead records
  std::uint64_t packs_deleted = 0;    // packs removed (rewritten ones included)
};

struct RepairResult {
  std::uint64_t chunks_repaired = 0;  // records replaced by good copies
  std::uint64_t bytes_repaired = 0;   // raw bytes of those chunks
  std::vector<ChunkKey> not_found;    // asked for, in the index, but in no source
};

// Says whether a chunk must stay (EvictPacks: pinned by a reader).
using KeepChunkFn = std::function<bool(const ChunkKey& key)>;

struct EvictResult {
  std::uint64_t packs_evicted = 0;   // packs deleted
  std::uint64_t chunks_evicted = 0;  // chunks dropped from the store
  std::uint64_t evicted_bytes = 0;   // their record bytes
  std::uint64_t chunks_kept = 0;     // chunks of those packs carried forward (pinned, in use)
  std::uint64_t pack_bytes = 0;      // pack file bytes afterwards
};

struct RebuildReport {
  std::uint64_t packs_scanned = 0;
  std::uint64_t chunks = 0;
  std::uint64_t blobs = 0;          // live blobs restored
  std::uint64_t removed_blobs = 0;  // ids whose newest record is a tombstone
  std::uint64_t skipped_records = 0;
  std::vector<std::string> problems;  // "pack 3: truncated record at offset N (crash?)"
};

class ChunkStore final : public ChunkSource {
 public:
  static Result<std::unique_ptr<ChunkStore>> Open(const ChunkStoreOptions& options);

  // Deletes and recreates <path>/index from the packs alone. Takes the writer LOCK
  // (kBusy if a writer runs); the store must not be open in this process as a writer.
  static Result<RebuildReport> RebuildIndex(const ChunkStoreOptions& options);

  // 1..255 bytes; no ',', '/', NUL, whitespace or control characters.
  static Status ValidateBlobId(std::string_view id);

  ~ChunkStore() override;
  ChunkStore(const ChunkStore&) = delete;
  ChunkStore& operator=(const ChunkStore&) = delete;

  // ChunkSource. OpenBlob: kNotFound when no blob has this id (after one catch-up). A
  // store opened with hold_serving_lock (a daemon) also leases the blob: the hold is the
  // BlobLease, so `rm` refuses while any copy of it lives.
  Result<OpenedBlob> OpenBlob(std::string_view blob_id) override;
  // kCorruption when the stored bytes do not verify, kNotFound when the key is unknown.
  // `timings` gets the index lookup, the pack read, the decompression and the XXH3 check.
  using ChunkSource::ReadChunk;
  Status ReadChunk(const ChunkExtent& extent, std::span<std::byte> out,
                   ChunkReadTimings* timings) override;

  // Shared lease on a blob while it is served. kNotFound if the blob does not exist.
  Result<BlobLease> LeaseBlob(std::string_view blob_id);

  // Writer only. Imports the file at `path` as a blob.
  //  - same id + same content: OK, already_present = true, nothing written;
  //  - same id + other content: kAlreadyExists;
  //  - a stored chunk with the same XXH3-128 key but another SHA-256: kCorruption naming
  //    the key; the store is left as it was;
  //  - empty/missing/unreadable file: kInvalidArgument / kNotFound / kIoError;
  //  - disk full: kNoSpace, the store left as it was.
  Result<ImportResult> ImportBlob(const std::string& path, const ImportOptions& options,
                                  const ImportProgress& progress = {});

  // Verifies a chunk that came from outside the store: the payload decodes to raw_len bytes
  // whose XXH3-128 is `key` and whose SHA-256 is `sha256`. kCorruption naming the key
  // otherwise. `raw` (optional) receives the decoded bytes.
  static Status VerifyStoredChunk(const StoredChunk& chunk, std::vector<std::byte>* raw = nullptr);

  // The chunk's record as stored (codec and payload), after checking it decodes to bytes
  // matching its key and SHA-256: corrupt bytes never leave the store. kNotFound when
  // the key is unknown, kCorruption when the record does not verify.
  Result<StoredChunk> ReadStoredChunk(const ChunkKey& key);

  // Writer only. Adds chunks that came from elsewhere, each verified first
  // (VerifyStoredChunk). Chunks already stored with the same SHA-256 are skipped; the same
  // key with another SHA-256 is kCorruption. All or nothing: appended and fsynced, then one
  // index batch; on failure the store is left as it was. No blob refers to them yet (gc
  // removes them unless a blob does by then).
  Result<PutChunksResult> PutChunks(std::span<const StoredChunk> chunks);

  // Writer only. Adds blob `info.id` with the chunk map `extents` (contiguous from 0,
  // lengths as ImportBlob makes them), asking `supply` for the chunks the store lacks.
  // One transaction, like ImportBlob: every supplied chunk is verified, the blob's bytes
  // (read back in order) must hash to info.sha256, then the chunks and the blob commit
  // together; on any failure nothing is left in the store. info.size, info.chunker and
  // info.sha256 must be set; created_unix_s is the time of this call.
  //  - same id + same content: OK with already_present, supply not called;
  //  - same id + other content: kAlreadyExists;
  //  - a map that does not cover the blob, a missing chunk, a bad blob hash: kCorruption.
  Result<ImportResult> ImportChunkedBlob(const BlobInfo& info,
                                         const std::vector<ChunkExtent>& extents,
                                         const ChunkSupplier& supply);

  Result<std::vector<BlobInfo>> ListBlobs();  // sorted by id
  Result<BlobInfo> GetBlob(std::string_view blob_id);
  Result<StoreStats> Stats();

  // Writes the blob's bytes to `out_fd` (borrowed; written sequentially from its current
  // position) or to a new file at `out_path`, verifying every chunk. On kCorruption the
  // output is incomplete (a path output is removed).
  Status Export(std::string_view blob_id, int out_fd);
  Status ExportToPath(std::string_view blob_id, const std::string& out_path);

  // Reads and verifies every chunk (of one blob if `blob_id` is set), reporting
  // corrupt and missing chunks with the blobs they belong to.
  Result<VerifyReport> Verify(std::optional<std::string> blob_id = std::nullopt,
                              const VerifyProgress& progress = {});

  // Writer only. Removes a blob (index records + a tombstone in the pack stream); its
  // chunks become garbage for Gc. kBusy while a daemon leases it, kNotFound if absent.
  Status Remove(std::string_view blob_id);

  // Writer only. Rewrites packs holding unreferenced chunks and deletes the old ones. Safe
  // while daemons serve the store (FORMAT.md "gc while a daemon serves").
  Result<GcResult> Gc(bool dry_run);

  // Writer only. Replaces the records of the chunks `wanted` (typically the corrupt ones
  // Verify named) with good copies cut from `sources`, files holding blobs of this store
  // (the images once imported): each is cut with every chunker a stored blob uses, and a
  // chunk is taken only when its XXH3-128 and SHA-256 equal the index entry's. The copies
  // go to a new pack, which is synced; one synced batch then repoints the entries, so a
  // crash leaves the old or the new state. The damaged records become garbage for Gc.
  // Keys the index lacks are ignored (nothing says what their bytes must be).
  Result<RepairResult> RepairChunks(std::span<const ChunkKey> wanted,
                                    std::span<const std::string> sources);

  // Writer only. For a store used as a bounded cache of chunks fetched from elsewhere
  // (lazyblobd's origin cache, registry/FORMAT.md): deletes whole packs, oldest (lowest
  // id) first, until the pack files add up to at most `target_bytes`. Chunks of those packs
  // that `pinned` says must stay, chunks a blob map references and live manifests are
  // copied forward into a new pack first, so they are never lost; the others leave the
  // store. Crash safe like Gc (one index batch). `pinned` is called under the writer lock.
  Result<EvictResult> EvictPacks(std::uint64_t target_bytes, const KeepChunkFn& pinned);

  // Sum of the pack files' sizes (a directory listing and a stat per pack).
  Result<std::uint64_t> PackBytes();

  // Whether the index holds `key` (no catch-up with a writer: cheap, may lag behind it).
  Result<bool> HasChunk(const ChunkKey& key);

  // Reader only: picks up the writer's latest commits now (also done on misses).
  Status CatchUp();

  const std::string& path() const;
  bool writable() const;
  ChunkerOptions default_chunker() const;
  std::string store_uuid_hex() const;

  // Test hook: writes a chunks-index record for `key` claiming `sha256`, pointing at no
  // valid data. Used to prove an XXH3 collision with different content is refused.
  Status TestOnlyPutChunkIndexRecord(const ChunkKey& key, const Sha256Digest& sha256);

  class Impl;

 private:
  explicit ChunkStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_CHUNK_STORE_H_
