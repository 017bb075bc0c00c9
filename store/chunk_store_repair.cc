// ChunkStore::Impl::Repair: replaces damaged chunk records with good copies cut from
// source files (FORMAT.md "Repairing chunks").
//
// An import cannot do this: it shares every chunk whose key the index already has. Repair
// cuts each source with every chunker a stored blob uses, keeps the chunks it was asked
// for whose XXH3-128 and SHA-256 both match the index entry, appends them to a new pack,
// syncs it, and repoints the entries in one synced batch. The damaged records stay in
// their packs, referenced by nothing: gc drops them when it rewrites those packs.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <vector>

#include "store/chunk_store_impl.h"
#include "store/chunker.h"
#include "store/hashing.h"

namespace lazyblob {
namespace {

// A read-only mapping of a whole source file.
class MappedFile {
 public:
  static Result<MappedFile> Open(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Status::FromErrno(errno, "open " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
    if (!S_ISREG(st.st_mode)) return InvalidArgument(path + " is not a regular file");
    MappedFile f;
    f.size_ = static_cast<std::size_t>(st.st_size);
    if (f.size_ == 0) return f;
    void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) return Status::FromErrno(errno, "mmap " + path);
    f.data_ = static_cast<const std::byte*>(p);
    return f;
  }
  MappedFile(MappedFile&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; }
  MappedFile& operator=(MappedFile&&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
  }
  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  MappedFile() = default;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// zstd at the default import level unless that does not make the chunk smaller.
std::pair<Codec, std::vector<std::uint8_t>> Encode(std::span<const std::byte> raw) {
  std::vector<std::uint8_t> out(ZSTD_compressBound(raw.size()));
  const std::size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 3);
  if (!ZSTD_isError(n) && n < raw.size()) {
    out.resize(n);
    return {Codec::kZstd, std::move(out)};
  }
  const auto* p = reinterpret_cast<const std::uint8_t*>(raw.data());
  return {Codec::kRaw, std::vector<std::uint8_t>(p, p + raw.size())};
}

// The chunks of `wanted` the index knows, with their locations.
Result<std::map<ChunkKey, ChunkLocation>> IndexedChunks(StoreIndex& index,
                                                        std::span<const ChunkKey> wanted) {
  std::map<ChunkKey, ChunkLocation> found;
  for (const ChunkKey& key : wanted) {
    LB_ASSIGN_OR_RETURN(auto loc, index.GetChunk(key));
    if (loc) found.emplace(key, *loc);
  }
  return found;
}

// Every chunker a stored blob was cut with, each once.
Result<std::vector<ChunkerOptions>> ChunkersInUse(StoreIndex& index) {
  std::vector<ChunkerOptions> chunkers;
  LB_RETURN_IF_ERROR(index.ForEachBlob([&](const BlobRecord& r) {
    if (std::find(chunkers.begin(), chunkers.end(), r.info.chunker) == chunkers.end()) {
      chunkers.push_back(r.info.chunker);
    }
    return Status::Ok();
  }));
  return chunkers;
}

// Cuts `source` with `chunker`; each chunk of `todo` found there (its length and SHA-256
// matching the index entry too) is appended to `writer`, its new location staged in
// `batch`, counted in `result` and erased from `todo`.
Status AppendMatchingChunks(std::span<const std::byte> source, const Chunker& chunker,
                            std::map<ChunkKey, ChunkLocation>& todo, PackWriter& writer,
                            StoreIndex::Batch& batch, RepairResult& result) {
  for (std::size_t off = 0; off < source.size() && !todo.empty();) {
    const std::span<const std::byte> raw =
        source.subspan(off, chunker.NextCut(source.subspan(off), true));
    off += raw.size();
    auto it = todo.find(ChunkKeyOf(raw));
    if (it == todo.end() || raw.size() != it->second.raw_len ||
        Sha256Of(raw) != it->second.sha256) {
      continue;
    }
    auto [codec, payload] = Encode(raw);
    RecordHeader h{RecordType::kChunk,
                   codec,
                   it->first,
                   it->second.sha256,
                   static_cast<std::uint32_t>(raw.size()),
                   static_cast<std::uint32_t>(payload.size())};
    LB_ASSIGN_OR_RETURN(auto at, writer.Append(h, payload));
    batch.PutChunk(it->first, ChunkLocation{at.pack_id, at.offset, h.stored_len, h.raw_len, codec,
                                            it->second.sha256});
    ++result.chunks_repaired;
    result.bytes_repaired += raw.size();
    todo.erase(it);
  }
  return Status::Ok();
}

}  // namespace

Result<RepairResult> ChunkStore::Impl::Repair(std::span<const ChunkKey> wanted,
                                              std::span<const std::string> sources) {
  LB_RETURN_IF_ERROR(RequireWriter("repair"));
  std::lock_guard lock(writer_mu);
  RepairResult result;
  LB_ASSIGN_OR_RETURN(auto todo, IndexedChunks(*index, wanted));
  LB_ASSIGN_OR_RETURN(const std::vector<ChunkerOptions> chunkers, ChunkersInUse(*index));

  writer->Begin();
  writer->StartNewPack();
  auto fail = [&](Status s) {
    for (const auto& [pack, end] : writer->TouchedEnds()) packs->Forget(pack);
    writer->Rollback().IgnoreError();
    return s.WithContext("repair");
  };
  auto batch = index->NewBatch();
  for (const std::string& path : sources) {
    auto file = MappedFile::Open(path);
    if (!file.ok()) return fail(file.status());
    for (const ChunkerOptions& opts : chunkers) {
      if (todo.empty()) break;
      Status s = AppendMatchingChunks(file->bytes(), Chunker(opts), todo, *writer, batch, result);
      if (!s.ok()) return fail(s);
    }
  }
  for (const auto& [key, loc] : todo) result.not_found.push_back(key);
  if (result.chunks_repaired == 0) {
    LB_RETURN_IF_ERROR(writer->Rollback());
    return result;
  }
  if (Status s = writer->Sync(); !s.ok()) return fail(s);
  for (const auto& [pack, end] : writer->TouchedEnds()) batch.PutPackEnd(pack, end);
  if (Status s = index->Commit(batch); !s.ok()) return fail(s);
  return result;
}

}  // namespace lazyblob
