#include "store/chunk_store.h"

#include <openssl/rand.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/aligned_buffer.h"
#include "store/chunk_store_impl.h"
#include "store/file_ops.h"
#include "store/hashing.h"
#include "store/store_lock.h"

namespace lazyblob {
namespace {

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + path);
  }
  return Status::Ok();
}

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Creates the store directory and its missing ancestors, each made durable in its parent.
Status CreateStoreDir(FileOps* ops, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(path, ec).lexically_normal();
  if (ec) return Status::FromErrno(ec.value(), "create store " + path);
  if (!p.has_filename()) p = p.parent_path();  // a trailing '/'
  std::vector<fs::path> missing;
  for (; p != p.parent_path() && !fs::exists(p, ec); p = p.parent_path()) missing.push_back(p);
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    LB_RETURN_IF_ERROR(MakeDir(*it));
    LB_RETURN_IF_ERROR(SyncDirectory(ops, it->parent_path()));
  }
  return Status::Ok();
}

Status OpenWriter(ChunkStore::Impl* impl) {
  const ChunkStoreOptions& o = impl->options;
  FileOps* ops = o.test_file_ops != nullptr ? o.test_file_ops : PosixFileOps();
  if (o.create_if_missing) {
    LB_RETURN_IF_ERROR(CreateStoreDir(ops, o.path));
  } else if (!IsDir(o.path)) {
    return NotFound("store " + o.path + " does not exist");
  }
  LB_ASSIGN_OR_RETURN(impl->writer_lock, LockStoreForWriting(o.path));
  LB_RETURN_IF_ERROR(MakeDir(PackSet::PackDir(o.path)));
  LB_RETURN_IF_ERROR(MakeDir(o.path + "/leases"));
  const std::string index_dir = o.path + "/index";
  if (!o.create_if_missing && !IsDir(index_dir)) {
    return NotFound("store " + o.path + " has no index; run rebuild-index");
  }
  LB_ASSIGN_OR_RETURN(impl->index, StoreIndex::OpenPrimary(index_dir, true, o.test_index_env));
  // packs/, leases/ and index/ must be entries of the store directory on disk before
  // anything is committed in them: RocksDB syncs inside index/, never the directory
  // holding it, and packs/ was only ever synced for its own entries.
  LB_RETURN_IF_ERROR(SyncDirectory(ops, o.path));
  LB_ASSIGN_OR_RETURN(auto meta, impl->index->GetMeta());
  if (!meta) {
    LB_ASSIGN_OR_RETURN(auto packs, PackSet::ListPackIds(o.path));
    if (!packs.empty()) {
      return Corruption("store " + o.path + " has packs but an empty index; run rebuild-index");
    }
    meta.emplace();
    meta->default_chunker = o.default_chunker;
    if (RAND_bytes(meta->store_uuid.data(), 16) != 1) return Internal("RAND_bytes failed");
    auto batch = impl->index->NewBatch();
    batch.PutMeta(*meta);
    LB_RETURN_IF_ERROR(impl->index->Commit(batch));
  }
  impl->meta = *meta;
  LB_ASSIGN_OR_RETURN(auto ends, impl->index->PackEnds());
  PackHeader header;
  header.store_uuid = impl->meta.store_uuid;
  header.default_chunker = impl->meta.default_chunker;
  LB_ASSIGN_OR_RETURN(impl->writer,
                      PackWriter::Open(o.path, header, o.pack_target_bytes, ends, ops));
  return Status::Ok();
}

// Removes secondary dirs that readers which died (kill -9) left under `base`: ours, named
// for a pid that no longer runs. Best effort.
void RemoveDeadReadersDirs(const std::string& base) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
    const std::string name = entry.path().filename().string();
    constexpr std::string_view kPrefix = "lazyblob-secondary-";
    if (name.rfind(kPrefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + kPrefix.size(), nullptr, 10);
    struct stat st {};
    if (pid <= 0 || ::lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != ::geteuid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) {
      continue;
    }
    std::filesystem::remove_all(entry.path(), ec);
  }
}

std::string OctalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// A directory the caller named for RocksDB's secondary files: it is created 0700 when
// missing, else it must be a real directory (not a link) of this user, closed to others,
// holding no symlinks. Anything else could let another user redirect what RocksDB writes.
Status CheckPrivateDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0) return Status::Ok();
  if (errno != EEXIST) return Status::FromErrno(errno, "mkdir " + path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "lstat " + path);
  const std::string why =
      !S_ISDIR(st.st_mode)       ? "is not a directory (or is a symlink)"
      : st.st_uid != ::geteuid() ? "is owned by uid " + std::to_string(st.st_uid) + ", not us"
      : (st.st_mode & 077) != 0  ? "is open to other users (mode " + OctalMode(st.st_mode) + ")"
                                 : "";
  if (why.empty()) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
      if (entry.is_symlink()) {
        return Status(StatusCode::kPermissionDenied,
                      "secondary dir " + path + " holds a symlink (" +
                          entry.path().filename().string() + "): refusing to use it");
      }
    }
    if (ec) return Status::FromErrno(ec.value(), "list " + path);
    return Status::Ok();
  }
  return Status(StatusCode::kPermissionDenied,
                "secondary dir " + path + " " + why + ": refusing to use it");
}

// The reader's private RocksDB secondary directory.
Result<std::string> MakeSecondaryDir(const ChunkStoreOptions& o) {
  if (!o.secondary_path.empty()) {
    LB_RETURN_IF_ERROR(CheckPrivateDir(o.secondary_path));
    return o.secondary_path;
  }
  const char* tmp = std::getenv("TMPDIR");
  const std::string base = tmp != nullptr && *tmp == '/' ? tmp : "/tmp";
  RemoveDeadReadersDirs(base);
  // mkdtemp: a new directory with a random name, mode 0700, never one that existed.
  std::string tmpl = base + "/lazyblob-secondary-" + std::to_string(::getpid()) + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return Status::FromErrno(errno, "mkdtemp " + tmpl);
  return tmpl;
}

Status OpenReader(ChunkStore::Impl* impl) {
  const ChunkStoreOptions& o = impl->options;
  const std::string index_dir = o.path + "/index";
  if (!IsDir(index_dir)) return NotFound("store " + o.path + " does not exist or has no index");
  if (o.hold_serving_lock) {
    LB_ASSIGN_OR_RETURN(impl->serving_lock, LockStoreForServing(o.path));
  }
  LB_ASSIGN_OR_RETURN(impl->secondary_dir, MakeSecondaryDir(o));
  LB_ASSIGN_OR_RETURN(impl->index,
                      StoreIndex::OpenSecondary(index_dir, impl->secondary_dir, o.test_index_env));
  LB_ASSIGN_OR_RETURN(auto meta, impl->index->GetMeta());
  if (!meta) return NotFound("store " + o.path + " is not initialized (no meta)");
  impl->meta = *meta;
  return Status::Ok();
}

}  // namespace

Status ChunkStoreOptions::Validate() const {
  if (path.empty()) return InvalidArgument("store path is empty");
  if (create_if_missing && !writable) {
    return InvalidArgument("create_if_missing needs a writable store");
  }
  if (pack_target_bytes < (1u << 20)) return InvalidArgument("pack_target_bytes must be >= 1 MiB");
  if (import_threads < 0) return InvalidArgument("import_threads must be >= 0");
  return default_chunker.Validate();
}

Status ImportOptions::Validate() const {
  if (!id.empty()) LB_RETURN_IF_ERROR(ChunkStore::ValidateBlobId(id));
  if (chunker) LB_RETURN_IF_ERROR(chunker->Validate());
  if (zstd_level < 1 || zstd_level > 19) return InvalidArgument("zstd level must be 1..19");
  return Status::Ok();
}

Status ChunkStore::ValidateBlobId(std::string_view id) {
  if (id.empty() || id.size() > 255) {
    return InvalidArgument("blob id must be 1..255 bytes, got " + std::to_string(id.size()));
  }
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ',' || c == '/' || u <= 0x20 || u == 0x7f) {
      return InvalidArgument("blob id '" + std::string(id) +
                             "' may not contain ',', '/', whitespace or control characters");
    }
  }
  return Status::Ok();
}

ChunkStore::Impl::~Impl() {
  writer.reset();
  index.reset();
  if (!secondary_dir.empty() && options.secondary_path.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(secondary_dir, ec);
  }
}

Status ChunkStore::Impl::RequireWriter(std::string_view what) const {
  if (writer == nullptr) {
    return InvalidArgument(std::string(what) + " needs the store opened for writing");
  }
  return Status::Ok();
}

Result<std::shared_ptr<const BlobMap>> ChunkStore::Impl::LoadMap(std::string_view id,
                                                                 bool catch_up) {
  LB_ASSIGN_OR_RETURN(auto rec, LookUp([&] { return index->GetBlob(id); }, catch_up));
  if (!rec) return NotFound("blob '" + std::string(id) + "' is not in the store");
  LB_ASSIGN_OR_RETURN(auto extents, index->GetMap(id));
  if (!extents) return Corruption("blob '" + std::string(id) + "' has no chunk map");
  auto map = std::make_shared<BlobMap>();
  map->id = std::string(id);
  map->size = rec->info.size;
  map->extents = std::move(*extents);
  std::uint64_t end = 0;
  for (std::size_t i = 0; i < map->extents.size(); ++i) {
    const ChunkExtent& e = map->extents[i];
    const bool last = i + 1 == map->extents.size();
    if (e.length == 0 || (!last && e.length % kBlockSize != 0)) {
      return Corruption("blob '" + map->id + "' has a malformed chunk map");
    }
    end += e.length;
  }
  if (end != map->size) return Corruption("blob '" + map->id + "' chunk map does not cover it");
  return std::shared_ptr<const BlobMap>(std::move(map));
}

Result<ChunkLocation> ChunkStore::Impl::Locate(const ChunkKey& key, bool catch_up) {
  LB_ASSIGN_OR_RETURN(auto loc, LookUp([&] { return index->GetChunk(key); }, catch_up));
  if (!loc) return NotFound("chunk " + key.ToHex() + " is not in the store");
  return *loc;
}

Status ChunkStore::Impl::ReadLocated(const ChunkKey& key, const ReadAtFn& read,
                                     ChunkReadTimings* timings) {
  // Each retry follows a committed move; a gc loop could move a chunk again between a
  // catch-up and the read, so a few moves in a row are followed, not just one.
  constexpr int kMaxMoves = 16;
  ChunkReadStopwatch watch(timings);
  Result<ChunkLocation> loc = Locate(key, true);
  watch.Lap(&ChunkReadTimings::lookup);
  LB_RETURN_IF_ERROR(loc.status());
  Status s = read(*loc);
  // kCorruption too: `verify --repair` may have repointed a damaged chunk to a good copy
  // since this reader's last catch-up. Only a changed location is read again.
  auto moved_maybe = [](const Status& st) {
    return st.code() == StatusCode::kNotFound || st.code() == StatusCode::kCorruption;
  };
  for (int move = 0; moved_maybe(s) && move < kMaxMoves; ++move) {
    ChunkReadStopwatch retry(timings);
    packs->Forget(loc->pack_id);
    LB_RETURN_IF_ERROR(CatchUpIfReader());
    Result<ChunkLocation> moved = Locate(key, false);
    retry.Lap(&ChunkReadTimings::lookup);
    LB_RETURN_IF_ERROR(moved.status());
    if (moved->pack_id == loc->pack_id && moved->offset == loc->offset) return s;  // not moved
    loc = std::move(moved);
    s = read(*loc);
  }
  return s;
}

ChunkStore::ChunkStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChunkStore::~ChunkStore() = default;

Result<std::unique_ptr<ChunkStore>> ChunkStore::Open(const ChunkStoreOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->packs = std::make_unique<PackSet>(options.path);
  LB_RETURN_IF_ERROR(options.writable ? OpenWriter(impl.get()) : OpenReader(impl.get()));
  return std::unique_ptr<ChunkStore>(new ChunkStore(std::move(impl)));
}

Result<RebuildReport> ChunkStore::RebuildIndex(const ChunkStoreOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  if (!IsDir(options.path)) return NotFound("store " + options.path + " does not exist");
  LB_ASSIGN_OR_RETURN(UniqueFd lock, LockStoreForWriting(options.path));
  return RebuildIndexFromPacks(options);
}

Result<OpenedBlob> ChunkStore::OpenBlob(std::string_view blob_id) {
  OpenedBlob blob;
  if (impl_->options.hold_serving_lock) {
    LB_ASSIGN_OR_RETURN(BlobLease lease, BlobLease::Acquire(impl_->options.path, blob_id));
    blob.hold = std::make_shared<BlobLease>(std::move(lease));
  }
  // Loaded after the lease is taken and after a catch-up: a concurrent Remove either
  // finished (not found, even by a secondary that lagged) or now fails with kBusy. A
  // leased blob's chunks are thus referenced by its map for as long as it is served, which
  // is what lets gc run meanwhile.
  LB_RETURN_IF_ERROR(impl_->CatchUpIfReader());
  LB_ASSIGN_OR_RETURN(blob.map, impl_->LoadMap(blob_id, true));
  return blob;
}

Status ChunkStore::ReadChunk(const ChunkExtent& extent, std::span<std::byte> out,
                             ChunkReadTimings* timings) {
  return impl_->ReadLocated(
      extent.key,
      [&](const ChunkLocation& loc) {
        if (loc.raw_len != extent.length) {
          return Corruption("chunk " + extent.key.ToHex() + " has length " +
                            std::to_string(loc.raw_len) + ", the blob map says " +
                            std::to_string(extent.length));
        }
        return impl_->packs->ReadChunk(extent.key, loc, out, false, timings);
      },
      timings);
}

Result<BlobLease> ChunkStore::LeaseBlob(std::string_view blob_id) {
  LB_ASSIGN_OR_RETURN(BlobLease lease, BlobLease::Acquire(impl_->options.path, blob_id));
  // Checked after locking and a catch-up: a concurrent Remove either finished (not found)
  // or fails.
  LB_RETURN_IF_ERROR(impl_->CatchUpIfReader());
  LB_ASSIGN_OR_RETURN(auto map, impl_->LoadMap(blob_id, true));
  (void)map;
  return lease;
}

Result<ImportResult> ChunkStore::ImportBlob(const std::string& path, const ImportOptions& options,
                                            const ImportProgress& progress) {
  return impl_->Import(path, options, progress);
}

Result<std::vector<BlobInfo>> ChunkStore::ListBlobs() {
  LB_RETURN_IF_ERROR(impl_->CatchUpIfReader());
  std::vector<BlobInfo> out;
  LB_RETURN_IF_ERROR(impl_->index->ForEachBlob([&](const BlobRecord& r) {
    out.push_back(r.info);
    return Status::Ok();
  }));
  return out;
}

Result<BlobInfo> ChunkStore::GetBlob(std::string_view blob_id) {
  LB_ASSIGN_OR_RETURN(auto rec,
                      impl_->LookUp([&] { return impl_->index->GetBlob(blob_id); }, true));
  if (!rec) return NotFound("blob '" + std::string(blob_id) + "' is not in the store");
  return rec->info;
}

Result<StoreStats> ChunkStore::Stats() {
  LB_RETURN_IF_ERROR(impl_->CatchUpIfReader());
  StoreStats s;
  LB_RETURN_IF_ERROR(impl_->index->ForEachBlob([&](const BlobRecord& r) {
    ++s.blobs;
    s.logical_bytes += r.info.size;
    return Status::Ok();
  }));
  LB_RETURN_IF_ERROR(impl_->index->ForEachChunk([&](const ChunkKey&, const ChunkLocation& l) {
    ++s.chunks;
    s.unique_bytes += l.raw_len;
    s.stored_bytes += l.stored_len;
    return Status::Ok();
  }));
  LB_ASSIGN_OR_RETURN(auto ids, PackSet::ListPackIds(impl_->options.path));
  s.packs = ids.size();
  for (std::uint32_t id : ids) {
    struct stat st {};
    if (::stat(PackSet::PackPath(impl_->options.path, id).c_str(), &st) == 0) {
      s.pack_file_bytes += static_cast<std::uint64_t>(st.st_size);
    }
  }
  if (s.unique_bytes > 0) s.dedup_ratio = double(s.logical_bytes) / double(s.unique_bytes);
  if (s.stored_bytes > 0) s.compression_ratio = double(s.unique_bytes) / double(s.stored_bytes);
  return s;
}

Status ChunkStore::Export(std::string_view blob_id, int out_fd) {
  return impl_->Export(blob_id, out_fd);
}

Result<VerifyReport> ChunkStore::Verify(std::optional<std::string> blob_id,
                                        const VerifyProgress& progress) {
  return impl_->Verify(blob_id, progress);
}

Status ChunkStore::Remove(std::string_view blob_id) { return impl_->Remove(blob_id); }
Result<GcResult> ChunkStore::Gc(bool dry_run) { return impl_->Gc(dry_run); }
Result<RepairResult> ChunkStore::RepairChunks(std::span<const ChunkKey> wanted,
                                              std::span<const std::string> sources) {
  return impl_->Repair(wanted, sources);
}
Status ChunkStore::CatchUp() { return impl_->index->CatchUp(); }

Result<bool> ChunkStore::HasChunk(const ChunkKey& key) {
  LB_ASSIGN_OR_RETURN(auto loc, impl_->index->GetChunk(key));
  return loc.has_value();
}
const std::string& ChunkStore::path() const { return impl_->options.path; }
bool ChunkStore::writable() const { return impl_->writer != nullptr; }
ChunkerOptions ChunkStore::default_chunker() const { return impl_->meta.default_chunker; }
std::string ChunkStore::store_uuid_hex() const { return HexOf(impl_->meta.store_uuid); }

Status ChunkStore::TestOnlyPutChunkIndexRecord(const ChunkKey& key, const Sha256Digest& sha256) {
  LB_RETURN_IF_ERROR(impl_->RequireWriter("TestOnlyPutChunkIndexRecord"));
  ChunkLocation loc;
  loc.pack_id = 0xffffffff;
  loc.sha256 = sha256;
  auto batch = impl_->index->NewBatch();
  batch.PutChunk(key, loc);
  return impl_->index->Commit(batch);
}

}  // namespace lazyblob
