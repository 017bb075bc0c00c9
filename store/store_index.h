// StoreIndex: the store's RocksDB index (<store>/index), column families "chunks",
// "blobs", "blob_maps" and "meta" (FORMAT.md "Index"). Everything in it can be rebuilt
// from the packs; it is a cache that makes lookups O(log n).
//
// Opened either as the primary (one writer process) or as a secondary instance (readers;
// CatchUp() picks up the primary's commits).
//
// Thread-safety: all methods are thread-safe (RocksDB is). A Batch is owned by one thread.
#ifndef LAZYBLOB_STORE_STORE_INDEX_H_
#define LAZYBLOB_STORE_STORE_INDEX_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chunk_source.h"
#include "core/status.h"
#include "store/blob_info.h"
#include "store/chunker.h"
#include "store/index_codec.h"
#include "store/pack_format.h"

namespace rocksdb {
class DB;
class Env;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace lazyblob {

struct StoreMeta {
  std::uint32_t format_version = kPackFormatVersion;
  std::array<std::uint8_t, 16> store_uuid{};
  ChunkerOptions default_chunker;
  std::uint64_t next_seq = 1;
};

class StoreIndex {
 public:
  class Batch {
   public:
    Batch();
    ~Batch();
    Batch(Batch&&) noexcept;
    Batch& operator=(Batch&&) noexcept;
    void PutChunk(const ChunkKey& key, const ChunkLocation& loc);
    void DeleteChunk(const ChunkKey& key);
    void PutBlob(const BlobRecord& rec, const std::vector<ChunkExtent>& extents);
    void DeleteBlob(std::string_view id);
    void PutMeta(const StoreMeta& meta);
    // Committed end of a pack: bytes past it are uncommitted and may be truncated.
    void PutPackEnd(std::uint32_t pack_id, std::uint64_t end);
    void DeletePackEnd(std::uint32_t pack_id);
    std::size_t count() const;

   private:
    friend class StoreIndex;
    StoreIndex* index_ = nullptr;  // set by StoreIndex::NewBatch
    std::unique_ptr<rocksdb::WriteBatch> wb_;
  };

  // `env` (borrowed, outlives the index): nullptr for RocksDB's default; tests pass one
  // (ChunkStoreOptions::test_index_env).
  static Result<std::unique_ptr<StoreIndex>> OpenPrimary(const std::string& dir, bool create,
                                                         rocksdb::Env* env = nullptr);
  static Result<std::unique_ptr<StoreIndex>> OpenSecondary(const std::string& dir,
                                                           const std::string& secondary_dir,
                                                           rocksdb::Env* env = nullptr);
  ~StoreIndex();

  Batch NewBatch();
  Status Commit(Batch& batch);  // atomic, sync=true

  Status CatchUp();  // secondary only

  Result<std::optional<ChunkLocation>> GetChunk(const ChunkKey& key);
  Result<std::optional<BlobRecord>> GetBlob(std::string_view id);
  Result<std::optional<std::vector<ChunkExtent>>> GetMap(std::string_view id);
  Result<std::optional<StoreMeta>> GetMeta();
  // Pack id -> committed end.
  Result<std::vector<std::pair<std::uint32_t, std::uint64_t>>> PackEnds();

  // Iteration stops early (and returns the error) when `fn` returns non-OK.
  Status ForEachChunk(const std::function<Status(const ChunkKey&, const ChunkLocation&)>& fn);
  Status ForEachBlob(const std::function<Status(const BlobRecord&)>& fn);
  Status ForEachMap(
      const std::function<Status(std::string_view, const std::vector<ChunkExtent>&)>& fn);

 private:
  StoreIndex() = default;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;  // default, chunks, blobs, blob_maps, meta
  bool secondary_ = false;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_STORE_INDEX_H_
