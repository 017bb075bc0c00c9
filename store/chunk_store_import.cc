// ChunkStore::Impl::Import: the import pipeline (FORMAT.md "Write order").
//
// read+chunk (serial) -> hash, dedup lookup, compress (parallel, oneTBB) -> append to the
// pack + blob SHA-256 (serial, in order). Nothing reaches the index until the pack bytes
// are fsynced; any failure rolls the pack back so the store is left as it was.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <unordered_map>

#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include "core/aligned_buffer.h"
#include "core/tsan.h"
#include "store/chunk_store_impl.h"
#include "store/hashing.h"

namespace lazyblob {
namespace {

constexpr std::size_t kReadBytes = 8u << 20;

// Debian's libtbb is not built with ThreadSanitizer, so the ordering oneTBB gives the
// pipeline (filters built on this thread, items handed from stage to stage, serial stages
// run one at a time on any worker) happens inside uninstrumented code and TSan reports it
// as races. In TSan builds every stage invocation acquires at its start and releases at
// its end one sync address, as does the thread that runs the pipeline: that states the
// order oneTBB guarantees. It also orders parallel-stage invocations among themselves,
// which work on distinct items; what they share (the index, zstd contexts) is thread-safe.
// Held by every stage invocation: it runs after what came before it.
struct StageOrderForTsan {
  explicit StageOrderForTsan(void* sync) : sync_(sync) { TsanAcquire(sync_); }
  ~StageOrderForTsan() { TsanRelease(sync_); }
  void* sync_;
};
// Held by the thread running the pipeline: the stages see its setup, it sees their work.
struct PipelineOrderForTsan {
  explicit PipelineOrderForTsan(void* sync) : sync_(sync) { TsanRelease(sync_); }
  ~PipelineOrderForTsan() { TsanAcquire(sync_); }
  void* sync_;
};

struct ChunkWork {
  std::uint64_t offset = 0;
  std::vector<std::byte> raw;
  ChunkKey key;
  Sha256Digest sha{};
  bool known = false;  // already in the store's index with the same SHA-256
  Codec codec = Codec::kRaw;
  std::vector<std::uint8_t> stored;  // compressed payload (codec kZstd)
  Status status;
};

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> ctx(ZSTD_createCCtx());
  return ctx.get();
}

// Large sequential reads of the input file cut into chunks.
class ChunkingReader {
 public:
  ChunkingReader(int fd, std::uint64_t size, const Chunker& chunker)
      : fd_(fd),
        size_(size),
        chunker_(chunker),
        buf_(std::max<std::size_t>(kReadBytes, 2 * chunker.MaxChunkBytes())) {}

  // The next chunk, or nullptr at the end of the file.
  Result<std::unique_ptr<ChunkWork>> Next() {
    if (end_ - pos_ < chunker_.MaxChunkBytes() && !eof_) LB_RETURN_IF_ERROR(Refill());
    if (pos_ == end_) {
      if (offset_ != size_) return IoError("input file changed size while importing");
      return std::unique_ptr<ChunkWork>();
    }
    std::span<const std::byte> avail(buf_.data() + pos_, end_ - pos_);
    std::size_t len = chunker_.NextCut(avail, eof_);
    auto w = std::make_unique<ChunkWork>();
    w->offset = offset_;
    w->raw.assign(avail.begin(), avail.begin() + static_cast<std::ptrdiff_t>(len));
    pos_ += len;
    offset_ += len;
    return w;
  }

 private:
  Status Refill() {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
    while (end_ < buf_.size()) {
      ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "read input");
      }
      if (n == 0) {
        eof_ = true;
        break;
      }
      end_ += static_cast<std::size_t>(n);
    }
    return Status::Ok();
  }

  int fd_;
  std::uint64_t size_;
  const Chunker& chunker_;
  std::vector<std::byte> buf_;
  std::size_t pos_ = 0, end_ = 0;
  std::uint64_t offset_ = 0;
  bool eof_ = false;
};

Result<UniqueFd> OpenInput(const std::string& path, std::uint64_t* size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno(errno, "open " + path).WithContext("import");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("import: " + path + " is not a regular file");
  if (st.st_size == 0) return InvalidArgument("import: " + path + " is empty");
  *size = static_cast<std::uint64_t>(st.st_size);
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  return fd;
}

Result<Sha256Digest> HashWholeFile(int fd) {
  Sha256Stream sha;
  std::vector<std::byte> buf(kReadBytes);
  std::uint64_t off = 0;
  while (true) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read input");
    if (n == 0) break;
    sha.Update(std::span(buf.data(), static_cast<std::size_t>(n)));
    off += static_cast<std::uint64_t>(n);
  }
  return sha.Finish();
}

// Parallel stage: key, SHA-256, index lookup (collision check), compression.
void HashAndCompress(StoreIndex* index, int level, ChunkWork* w) {
  w->key = ChunkKeyOf(w->raw);
  w->sha = Sha256Of(w->raw);
  auto loc = index->GetChunk(w->key);
  if (!loc.ok()) {
    w->status = loc.status();
    return;
  }
  if (loc->has_value()) {
    if ((*loc)->sha256 != w->sha) {
      w->status = Corruption("chunk key " + w->key.ToHex() +
                             " is already stored with a different SHA-256: refusing to share it "
                             "(XXH3-128 collision or corrupt index)");
    }
    w->known = true;
    return;
  }
  w->stored.resize(ZSTD_compressBound(w->raw.size()));
  std::size_t n = ZSTD_compressCCtx(ThreadCCtx(), w->stored.data(), w->stored.size(), w->raw.data(),
                                    w->raw.size(), level);
  if (!ZSTD_isError(n) && n < w->raw.size()) {
    w->stored.resize(n);
    w->codec = Codec::kZstd;
  } else {
    w->stored.clear();
    w->codec = Codec::kRaw;
  }
}

// One ImportBlob run: the import pipeline's state and stages. Everything the stages share
// is a member: the serial stages (Produce, Consume) run one at a time, in file order; the
// parallel stage touches only its own ChunkWork and thread-safe shared state.
//
// Not thread-safe beyond that: one thread constructs it and calls Run, once. The caller
// holds store.writer_mu; `store`, `path`, `opts` and `progress` must outlive the object.
class ImportPipeline {
 public:
  ImportPipeline(ChunkStore::Impl& store, const std::string& path, int input_fd, std::uint64_t size,
                 const ImportOptions& opts, const ImportProgress& progress)
      : store_(store),
        path_(path),
        fd_(input_fd),
        size_(size),
        opts_(opts),
        progress_(progress),
        chunker_opts_(opts.chunker.value_or(store.meta.default_chunker)) {
    result_.size = size;
  }

  // Imports the input, or finds it already stored under its id. On an error the writer
  // is rolled back: nothing of this import stays in the store.
  Result<ImportResult> Run() {
    if (!opts_.id.empty()) {
      LB_ASSIGN_OR_RETURN(auto existing, store_.index->GetBlob(opts_.id));
      if (existing) {
        LB_ASSIGN_OR_RETURN(Sha256Digest sha, HashWholeFile(fd_));
        return SameContent(*existing, sha);
      }
    }
    store_.writer->Begin();
    RunStages();
    if (!read_status_.ok()) return Fail(read_status_);
    if (!pipe_status_.ok()) return Fail(pipe_status_);
    return CommitOrFindExisting();
  }

 private:
  // The result for an input that is already stored as `r`; kAlreadyExists when `r` holds
  // other content under the same id.
  Result<ImportResult> SameContent(const BlobRecord& r, const Sha256Digest& sha) {
    if (r.info.size != size_ || r.info.sha256 != sha) {
      return AlreadyExists("blob '" + r.info.id + "' already exists with other content");
    }
    result_.id = r.info.id;
    result_.chunks = r.info.chunk_count;
    result_.already_present = true;
    return result_;
  }

  // read+chunk -> hash, dedup lookup, compress -> append, on `opts_` threads (default: the
  // arena's). Errors are left in read_status_ and pipe_status_.
  void RunStages() {
    const Chunker chunker(chunker_opts_);
    ChunkingReader reader(fd_, size_, chunker);
    const int threads = store_.options.import_threads > 0 ? store_.options.import_threads
                                                          : tbb::this_task_arena::max_concurrency();
    tbb::task_arena arena(threads);
    StoreIndex* idx = store_.index.get();
    const int level = opts_.zstd_level;
    auto produce = [&](tbb::flow_control& fc) { return Produce(reader, fc); };
    auto hash_and_compress = [this, idx, level](ChunkWork* w) {
      StageOrderForTsan order(&tsan_sync_);
      HashAndCompress(idx, level, w);
      return w;
    };
    auto consume = [this](ChunkWork* w) { Consume(w); };
    const auto filters =
        tbb::make_filter<void, ChunkWork*>(tbb::filter_mode::serial_in_order, produce) &
        tbb::make_filter<ChunkWork*, ChunkWork*>(tbb::filter_mode::parallel, hash_and_compress) &
        tbb::make_filter<ChunkWork*, void>(tbb::filter_mode::serial_in_order, consume);
    arena.execute([&] {
      PipelineOrderForTsan order(&tsan_sync_);  // before the filters run; after they ended
      tbb::parallel_pipeline(static_cast<std::size_t>(threads) * 4, filters);
    });
  }

  // Serial stage: the next chunk of the input; nullptr (and fc stopped) at the end, on a
  // read error, or once Consume failed.
  ChunkWork* Produce(ChunkingReader& reader, tbb::flow_control& fc) {
    StageOrderForTsan order(&tsan_sync_);
    if (stop_.load(std::memory_order_relaxed)) {
      fc.stop();
      return nullptr;
    }
    auto next = reader.Next();
    if (!next.ok()) read_status_ = next.status();
    if (!next.ok() || *next == nullptr) {
      fc.stop();
      return nullptr;
    }
    return next->release();
  }

  // Serial stage, in file order: takes ownership of `raw_w` and adds it to the blob. The
  // first error stops the pipeline; later chunks are dropped.
  void Consume(ChunkWork* raw_w) {
    StageOrderForTsan order(&tsan_sync_);
    std::unique_ptr<ChunkWork> w(raw_w);
    if (!pipe_status_.ok()) return;
    Status s = w->status.ok() ? AddChunk(*w) : w->status;
    if (!s.ok()) {
      pipe_status_ = std::move(s);
      stop_ = true;
      return;
    }
    done_ += w->raw.size();
    if (progress_) progress_(done_, size_);
  }

  // Extends the blob's map and SHA-256 by `w`, and appends its record to the pack unless
  // the store or this import already has the chunk.
  Status AddChunk(const ChunkWork& w) {
    blob_sha_.Update(w.raw);
    extents_.push_back({w.offset, static_cast<std::uint32_t>(w.raw.size()), w.key});
    if (w.known) return Status::Ok();
    auto [it, inserted] = written_.emplace(w.key, w.sha);
    if (!inserted && it->second != w.sha) {
      return Corruption("chunk key " + w.key.ToHex() +
                        " occurs twice in the blob with different SHA-256");
    }
    return inserted ? AppendChunk(w) : Status::Ok();
  }

  Status AppendChunk(const ChunkWork& w) {
    const bool zstd = w.codec == Codec::kZstd;
    std::span<const std::uint8_t> payload =
        zstd ? std::span<const std::uint8_t>(w.stored)
             : std::span(reinterpret_cast<const std::uint8_t*>(w.raw.data()), w.raw.size());
    RecordHeader h{RecordType::kChunk,
                   w.codec,
                   w.key,
                   w.sha,
                   static_cast<std::uint32_t>(w.raw.size()),
                   static_cast<std::uint32_t>(payload.size())};
    LB_ASSIGN_OR_RETURN(auto loc, store_.writer->Append(h, payload));
    new_locs_.push_back(
        {w.key, ChunkLocation{loc.pack_id, loc.offset, h.stored_len, h.raw_len, w.codec, w.sha}});
    ++result_.new_chunks;
    result_.new_stored_bytes += kRecordHeaderBytes + payload.size();
    result_.new_bytes += w.raw.size();
    return Status::Ok();
  }

  // After the stages succeeded: names the blob and commits it (CommitBlob), unless a blob
  // named by its content hash is already stored.
  Result<ImportResult> CommitOrFindExisting() {
    const Sha256Digest sha = blob_sha_.Finish();
    result_.id = opts_.id.empty() ? HexOf(sha).substr(0, 32) : opts_.id;
    result_.chunks = extents_.size();
    if (opts_.id.empty()) {
      auto existing = store_.index->GetBlob(result_.id);
      if (!existing.ok()) return Fail(existing.status());
      if (existing->has_value()) {
        LB_RETURN_IF_ERROR(store_.writer->Rollback());
        return SameContent(**existing, sha);
      }
    }
    BlobManifest m;
    m.id = result_.id;
    m.size = size_;
    m.sha256 = sha;
    m.chunker = chunker_opts_;
    m.extents = std::move(extents_);
    auto manifest_bytes = store_.CommitBlob(std::move(m), [&](StoreIndex::Batch& batch) {
      for (const auto& [key, loc] : new_locs_) batch.PutChunk(key, loc);
    });
    if (!manifest_bytes.ok()) return Fail(manifest_bytes.status());
    result_.new_stored_bytes += *manifest_bytes;
    return result_;
  }

  // Rolls the writer back and returns `s` with context.
  Status Fail(Status s) {
    Status rb = store_.writer->Rollback();
    if (!rb.ok()) return s.WithContext("import (rollback failed: " + rb.ToString() + ")");
    return s.WithContext("import " + path_);
  }

  ChunkStore::Impl& store_;
  const std::string& path_;
  const int fd_;
  const std::uint64_t size_;
  const ImportOptions& opts_;
  const ImportProgress& progress_;
  const ChunkerOptions chunker_opts_;
  ImportResult result_;

  // Shared by the serial stages (tsan_sync_ by all of them).
  Sha256Stream blob_sha_;
  std::vector<ChunkExtent> extents_;
  std::unordered_map<ChunkKey, Sha256Digest, ChunkKeyHash> written_;  // new in this import
  std::vector<std::pair<ChunkKey, ChunkLocation>> new_locs_;
  Status read_status_, pipe_status_;
  std::atomic<bool> stop_{false};
  std::uint64_t done_ = 0;
  int tsan_sync_ = 0;
};

}  // namespace

Result<ImportResult> ChunkStore::Impl::Import(const std::string& path, const ImportOptions& opts,
                                              const ImportProgress& progress) {
  LB_RETURN_IF_ERROR(RequireWriter("import"));
  LB_RETURN_IF_ERROR(opts.Validate());
  std::lock_guard lock(writer_mu);
  std::uint64_t size = 0;
  LB_ASSIGN_OR_RETURN(UniqueFd in, OpenInput(path, &size));
  ImportPipeline pipeline(*this, path, in.get(), size, opts, progress);
  return pipeline.Run();
}

Result<std::uint64_t> ChunkStore::Impl::CommitBlob(
    BlobManifest m, const std::function<void(StoreIndex::Batch&)>& put_chunks) {
  m.seq = meta.next_seq;
  m.created_unix_s = static_cast<std::int64_t>(std::time(nullptr));
  std::vector<std::uint8_t> payload = EncodeManifest(m);
  const auto payload_len = static_cast<std::uint32_t>(payload.size());
  RecordHeader mh{
      RecordType::kManifest, Codec::kRaw, ChunkKey{}, Sha256Of(std::as_bytes(std::span(payload))),
      payload_len,           payload_len};
  LB_ASSIGN_OR_RETURN(auto mloc, writer->Append(mh, payload));
  LB_RETURN_IF_ERROR(writer->Sync());

  auto batch = index->NewBatch();
  put_chunks(batch);
  BlobRecord rec;
  rec.info = BlobInfo{m.id, m.size, m.extents.size(), m.chunker, m.sha256, m.created_unix_s};
  rec.seq = m.seq;
  rec.manifest_pack = mloc.pack_id;
  rec.manifest_offset = mloc.offset;
  batch.PutBlob(rec, m.extents);
  StoreMeta next = meta;
  ++next.next_seq;
  batch.PutMeta(next);
  for (const auto& [pack, end] : writer->TouchedEnds()) batch.PutPackEnd(pack, end);
  LB_RETURN_IF_ERROR(index->Commit(batch));
  meta.next_seq = next.next_seq;  // only next_seq changes; readers use the rest
  return kRecordHeaderBytes + payload_len;
}

}  // namespace lazyblob
