#include "store/store_index.h"

#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <cerrno>
#include <cstring>

namespace lazyblob {
namespace {

enum Cf { kDefault = 0, kChunks = 1, kBlobs = 2, kMaps = 3, kMeta = 4 };
const char* const kCfNames[] = {"default", "chunks", "blobs", "blob_maps", "meta"};

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  std::string m = std::string(what) + ": " + s.ToString();
  if (s.IsNoSpace()) return Status(StatusCode::kNoSpace, m, ENOSPC);
  if (s.IsCorruption()) return Corruption(m);
  if (s.IsBusy() || s.IsTimedOut()) return Busy(m);
  if (s.IsNotFound()) return NotFound(m);
  if (s.IsInvalidArgument()) return InvalidArgument(m);
  return IoError(m);
}

rocksdb::Slice AsSlice(const std::vector<std::uint8_t>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}
rocksdb::Slice AsSlice(const ChunkKey& k) {
  return {reinterpret_cast<const char*>(k.bytes.data()), k.bytes.size()};
}
std::span<const std::uint8_t> AsBytes(const rocksdb::Slice& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string PackEndKey(std::uint32_t pack_id) {
  std::string k = "pack_end/";
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>(pack_id >> (8 * i)));
  return k;
}

rocksdb::Options DbOptions(rocksdb::Env* env) {
  rocksdb::Options o;
  if (env != nullptr) o.env = env;
  o.create_missing_column_families = true;
  o.max_open_files = -1;  // required by secondary instances
  o.keep_log_file_num = 2;
  o.max_background_jobs = 2;
  o.allow_fallocate = false;  // no preallocated WAL: small filesystems fill honestly
  return o;
}

std::vector<rocksdb::ColumnFamilyDescriptor> Descriptors() {
  std::vector<rocksdb::ColumnFamilyDescriptor> d;
  for (const char* n : kCfNames) d.emplace_back(n, rocksdb::ColumnFamilyOptions());
  return d;
}

}  // namespace

StoreIndex::Batch::Batch() : wb_(std::make_unique<rocksdb::WriteBatch>()) {}
StoreIndex::Batch::~Batch() = default;
StoreIndex::Batch::Batch(Batch&&) noexcept = default;
StoreIndex::Batch& StoreIndex::Batch::operator=(Batch&&) noexcept = default;
std::size_t StoreIndex::Batch::count() const { return wb_->Count(); }

void StoreIndex::Batch::PutChunk(const ChunkKey& key, const ChunkLocation& loc) {
  wb_->Put(index_->cfs_[kChunks], AsSlice(key), AsSlice(EncodeChunkValue(loc)))
      .PermitUncheckedError();
}
void StoreIndex::Batch::DeleteChunk(const ChunkKey& key) {
  wb_->Delete(index_->cfs_[kChunks], AsSlice(key)).PermitUncheckedError();
}
void StoreIndex::Batch::PutBlob(const BlobRecord& rec, const std::vector<ChunkExtent>& extents) {
  wb_->Put(index_->cfs_[kBlobs], rec.info.id, AsSlice(EncodeBlobValue(rec))).PermitUncheckedError();
  wb_->Put(index_->cfs_[kMaps], rec.info.id, AsSlice(EncodeMap(extents))).PermitUncheckedError();
}
void StoreIndex::Batch::DeleteBlob(std::string_view id) {
  wb_->Delete(index_->cfs_[kBlobs], rocksdb::Slice(id.data(), id.size())).PermitUncheckedError();
  wb_->Delete(index_->cfs_[kMaps], rocksdb::Slice(id.data(), id.size())).PermitUncheckedError();
}
void StoreIndex::Batch::PutMeta(const StoreMeta& m) {
  std::vector<std::uint8_t> v;
  PutU32(&v, m.format_version);
  auto* cf = index_->cfs_[kMeta];
  wb_->Put(cf, "format_version", AsSlice(v)).PermitUncheckedError();
  v.assign(m.store_uuid.begin(), m.store_uuid.end());
  wb_->Put(cf, "store_uuid", AsSlice(v)).PermitUncheckedError();
  v.clear();
  AppendChunkerParams(m.default_chunker, &v);
  wb_->Put(cf, "default_chunker", AsSlice(v)).PermitUncheckedError();
  v.clear();
  PutU64(&v, m.next_seq);
  wb_->Put(cf, "next_seq", AsSlice(v)).PermitUncheckedError();
}
void StoreIndex::Batch::PutPackEnd(std::uint32_t pack_id, std::uint64_t end) {
  std::vector<std::uint8_t> v;
  PutU64(&v, end);
  wb_->Put(index_->cfs_[kMeta], PackEndKey(pack_id), AsSlice(v)).PermitUncheckedError();
}
void StoreIndex::Batch::DeletePackEnd(std::uint32_t pack_id) {
  wb_->Delete(index_->cfs_[kMeta], PackEndKey(pack_id)).PermitUncheckedError();
}

Result<std::unique_ptr<StoreIndex>> StoreIndex::OpenPrimary(const std::string& dir, bool create,
                                                            rocksdb::Env* env) {
  rocksdb::Options o = DbOptions(env);
  o.create_if_missing = create;
  std::unique_ptr<StoreIndex> idx(new StoreIndex());
  rocksdb::Status s = rocksdb::DB::Open(o, dir, Descriptors(), &idx->cfs_, &idx->db_);
  if (!s.ok()) return FromRocks(s, "open index " + dir);
  return idx;
}

Result<std::unique_ptr<StoreIndex>> StoreIndex::OpenSecondary(const std::string& dir,
                                                              const std::string& secondary_dir,
                                                              rocksdb::Env* env) {
  rocksdb::Options o = DbOptions(env);
  std::unique_ptr<StoreIndex> idx(new StoreIndex());
  idx->secondary_ = true;
  rocksdb::Status s =
      rocksdb::DB::OpenAsSecondary(o, dir, secondary_dir, Descriptors(), &idx->cfs_, &idx->db_);
  if (!s.ok()) return FromRocks(s, "open index " + dir + " (as reader)");
  return idx;
}

namespace {

// Each lazyblob command is a short-lived writer. The tables it flushes into the small
// column families (blobs, blob_maps, meta: keyed by blob id, so one command's keys do not
// overlap the last one's) are moved down whole, never merged, so those families gained a
// table per command: 100 imports left about 250 tables. A daemon's secondary instance keeps
// every table open (max_open_files = -1) and could not open such a store under a 64-fd
// limit. So a writer about to close rewrites a small family that holds more than a few
// tables into one. The big chunks family (random keys, each flush overlaps the last) is
// merged by RocksDB's own compactions. On a failure the tables stay for the next writer.
void MergeSmallFamilies(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
  constexpr std::size_t kMaxTables = 8;
  constexpr std::uint64_t kSmallFamilyBytes = 64ull << 20;
  for (auto* cf : cfs) {
    rocksdb::ColumnFamilyMetaData meta;
    db->GetColumnFamilyMetaData(cf, &meta);
    if (meta.file_count <= kMaxTables || meta.size > kSmallFamilyBytes) continue;
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
    db->CompactRange(o, cf, nullptr, nullptr).PermitUncheckedError();
  }
}

}  // namespace

StoreIndex::~StoreIndex() {
  if (db_ == nullptr) return;
  if (!secondary_) MergeSmallFamilies(db_, cfs_);
  for (auto* h : cfs_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  db_->Close().PermitUncheckedError();
  delete db_;
}

StoreIndex::Batch StoreIndex::NewBatch() {
  Batch b;
  b.index_ = this;
  return b;
}

Status StoreIndex::Commit(Batch& batch) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db_->Write(wo, batch.wb_.get());
  if (!s.ok()) {
    // A failed WAL write (e.g. ENOSPC) puts RocksDB in read-only mode until resumed.
    db_->Resume().PermitUncheckedError();
    return FromRocks(s, "index commit");
  }
  return Status::Ok();
}

Status StoreIndex::CatchUp() {
  if (!secondary_) return Status::Ok();
  rocksdb::Status s = db_->TryCatchUpWithPrimary();
  return s.ok() ? Status::Ok() : FromRocks(s, "index catch-up");
}

Result<std::optional<ChunkLocation>> StoreIndex::GetChunk(const ChunkKey& key) {
  rocksdb::PinnableSlice v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_[kChunks], AsSlice(key), &v);
  if (s.IsNotFound()) return std::optional<ChunkLocation>();
  if (!s.ok()) return FromRocks(s, "index get chunk");
  LB_ASSIGN_OR_RETURN(ChunkLocation l, DecodeChunkValue(AsBytes(v)));
  return std::optional<ChunkLocation>(l);
}

Result<std::optional<BlobRecord>> StoreIndex::GetBlob(std::string_view id) {
  rocksdb::PinnableSlice v;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cfs_[kBlobs], rocksdb::Slice(id.data(), id.size()), &v);
  if (s.IsNotFound()) return std::optional<BlobRecord>();
  if (!s.ok()) return FromRocks(s, "index get blob");
  LB_ASSIGN_OR_RETURN(BlobRecord r, DecodeBlobValue(id, AsBytes(v)));
  return std::optional<BlobRecord>(std::move(r));
}

Result<std::optional<std::vector<ChunkExtent>>> StoreIndex::GetMap(std::string_view id) {
  rocksdb::PinnableSlice v;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cfs_[kMaps], rocksdb::Slice(id.data(), id.size()), &v);
  if (s.IsNotFound()) return std::optional<std::vector<ChunkExtent>>();
  if (!s.ok()) return FromRocks(s, "index get blob map");
  LB_ASSIGN_OR_RETURN(auto extents, DecodeMap(AsBytes(v)));
  return std::optional<std::vector<ChunkExtent>>(std::move(extents));
}

Result<std::optional<StoreMeta>> StoreIndex::GetMeta() {
  auto get = [&](const char* key, std::string* out) {
    return db_->Get(rocksdb::ReadOptions(), cfs_[kMeta], key, out);
  };
  std::string version, uuid, chunker, seq;
  rocksdb::Status s = get("format_version", &version);
  if (s.IsNotFound()) return std::optional<StoreMeta>();
  if (!s.ok()) return FromRocks(s, "index get meta");
  if (!get("store_uuid", &uuid).ok() || !get("default_chunker", &chunker).ok() ||
      !get("next_seq", &seq).ok() || version.size() != 4 || uuid.size() != 16 || seq.size() != 8) {
    return Corruption("index: meta column family is incomplete");
  }
  StoreMeta m;
  m.format_version = GetU32(reinterpret_cast<const std::uint8_t*>(version.data()));
  if (m.format_version != kPackFormatVersion) {
    return Unsupported("store format version " + std::to_string(m.format_version) +
                       " is not supported");
  }
  std::memcpy(m.store_uuid.data(), uuid.data(), 16);
  LB_ASSIGN_OR_RETURN(
      m.default_chunker,
      DecodeChunkerParams({reinterpret_cast<const std::uint8_t*>(chunker.data()), chunker.size()}));
  m.next_seq = GetU64(reinterpret_cast<const std::uint8_t*>(seq.data()));
  return std::optional<StoreMeta>(m);
}

Result<std::vector<std::pair<std::uint32_t, std::uint64_t>>> StoreIndex::PackEnds() {
  std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMeta]));
  const std::string prefix = "pack_end/";
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->key().size() != prefix.size() + 4 || it->value().size() != 8) {
      return Corruption("index: bad pack_end entry");
    }
    const auto* k = reinterpret_cast<const std::uint8_t*>(it->key().data()) + prefix.size();
    std::uint32_t id = std::uint32_t{k[0]} << 24 | k[1] << 16 | k[2] << 8 | k[3];
    out.emplace_back(id, GetU64(reinterpret_cast<const std::uint8_t*>(it->value().data())));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "index scan meta");
  return out;
}

Status StoreIndex::ForEachChunk(
    const std::function<Status(const ChunkKey&, const ChunkLocation&)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kChunks]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 16) return Corruption("index: chunk key has a bad size");
    ChunkKey k;
    std::memcpy(k.bytes.data(), it->key().data(), 16);
    LB_ASSIGN_OR_RETURN(ChunkLocation l, DecodeChunkValue(AsBytes(it->value())));
    LB_RETURN_IF_ERROR(fn(k, l));
  }
  return it->status().ok() ? Status::Ok() : FromRocks(it->status(), "index scan chunks");
}

Status StoreIndex::ForEachBlob(const std::function<Status(const BlobRecord&)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kBlobs]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    LB_ASSIGN_OR_RETURN(BlobRecord r,
                        DecodeBlobValue(it->key().ToStringView(), AsBytes(it->value())));
    LB_RETURN_IF_ERROR(fn(r));
  }
  return it->status().ok() ? Status::Ok() : FromRocks(it->status(), "index scan blobs");
}

Status StoreIndex::ForEachMap(
    const std::function<Status(std::string_view, const std::vector<ChunkExtent>&)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMaps]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    LB_ASSIGN_OR_RETURN(auto extents, DecodeMap(AsBytes(it->value())));
    LB_RETURN_IF_ERROR(fn(it->key().ToStringView(), extents));
  }
  return it->status().ok() ? Status::Ok() : FromRocks(it->status(), "index scan blob maps");
}

}  // namespace lazyblob
