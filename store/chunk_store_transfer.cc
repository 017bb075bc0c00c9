// ChunkStore: moving chunks in and out as stored records (lazyblob push / pull):
// VerifyStoredChunk, ReadStoredChunk, PutChunks, ImportChunkedBlob. The write paths keep
// FORMAT.md's write order: pack bytes fsynced, then one index batch; a blob last.
#include <zstd.h>

#include <cstring>
#include <ctime>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "core/aligned_buffer.h"
#include "store/chunk_store_impl.h"
#include "store/hashing.h"

namespace lazyblob {
namespace {

struct DCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

RecordHeader ChunkRecordHeader(const StoredChunk& c) {
  return RecordHeader{RecordType::kChunk, c.codec,   c.key,
                      c.sha256,           c.raw_len, static_cast<std::uint32_t>(c.payload.size())};
}

// A chunk map must cover [0, size) with non-empty extents, all but the last 4 KiB
// multiples, as the chunker makes them.
Status CheckMap(const BlobInfo& info, const std::vector<ChunkExtent>& extents) {
  const std::uint32_t max_len = Chunker(info.chunker).MaxChunkBytes();
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < extents.size(); ++i) {
    const ChunkExtent& e = extents[i];
    const bool last = i + 1 == extents.size();
    if (e.length == 0 || e.blob_offset != offset || (!last && e.length % kBlockSize != 0) ||
        e.length > max_len) {
      return Corruption("blob '" + info.id + "': chunk map entry " + std::to_string(i) +
                        " is malformed");
    }
    offset += e.length;
  }
  if (extents.empty() || offset != info.size) {
    return Corruption("blob '" + info.id + "': chunk map does not cover its " +
                      std::to_string(info.size) + " bytes");
  }
  return Status::Ok();
}

// One ImportChunkedBlob run, after its arguments were checked: the chunks to ask for, the
// sink that appends what is supplied, and the checks before the blob commits.
//
// The sink may run on many threads at once (ChunkSink): what it shares is guarded by
// sink_mu_ while `supply` runs; before and after, the thread that called Run owns it all.
// The caller holds store.writer_mu; `store`, `info` and `extents` must outlive the object.
class ChunkedImport {
 public:
  ChunkedImport(ChunkStore::Impl& store, const BlobInfo& info,
                const std::vector<ChunkExtent>& extents)
      : store_(store), info_(info), extents_(extents) {
    result_.id = info.id;
    result_.size = info.size;
    result_.chunks = extents.size();
  }

  // Stores the blob (ChunkStore::ImportChunkedBlob's contract). On an error after the
  // writer began, it is rolled back: nothing of this import stays in the store.
  Result<ImportResult> Run(const ChunkSupplier& supply) {
    LB_ASSIGN_OR_RETURN(auto existing, store_.index->GetBlob(info_.id));
    if (existing) {
      if (existing->info.size != info_.size || existing->info.sha256 != info_.sha256) {
        return AlreadyExists("blob '" + info_.id + "' already exists with other content");
      }
      result_.already_present = true;
      return result_;
    }
    LB_ASSIGN_OR_RETURN(const std::vector<ChunkExtent> missing, FindMissing());
    store_.writer->Begin();
    if (!missing.empty()) {
      const ChunkSink sink = [this](StoredChunk c) { return Take(std::move(c)); };
      if (Status s = supply(missing, sink); !s.ok()) return Fail(s);
    }
    for (const ChunkExtent& e : missing) {
      if (new_locs_.count(e.key) == 0) {
        return Fail(Corruption("chunk " + e.key.ToHex() + " was not supplied"));
      }
    }
    result_.new_chunks = new_locs_.size();
    if (Status s = store_.writer->Sync(); !s.ok()) return Fail(s);
    if (Status s = CheckBlobSha(); !s.ok()) return Fail(s);
    return Commit();
  }

 private:
  // The chunks to ask for: each key the store lacks once, with the length the map gives
  // it. Fills wanted_ with every key of the map. kCorruption when the store has a key with
  // another length.
  Result<std::vector<ChunkExtent>> FindMissing() {
    std::vector<ChunkExtent> missing;
    for (const ChunkExtent& e : extents_) {
      if (wanted_.count(e.key) != 0) continue;
      LB_ASSIGN_OR_RETURN(auto loc, store_.index->GetChunk(e.key));
      if (loc && loc->raw_len != e.length) {
        return Corruption("chunk " + e.key.ToHex() + " is stored with length " +
                          std::to_string(loc->raw_len) + ", the map says " +
                          std::to_string(e.length));
      }
      wanted_.emplace(e.key, e.length);
      if (!loc) missing.push_back(e);
    }
    return missing;
  }

  // The sink: verifies a supplied chunk and appends it once. After an append failed,
  // every later call returns that failure.
  Status Take(StoredChunk c) {
    auto it = wanted_.find(c.key);
    if (it == wanted_.end() || it->second != c.raw_len) {
      return Corruption("chunk " + c.key.ToHex() + " is not in blob '" + info_.id +
                        "' with that length");
    }
    LB_RETURN_IF_ERROR(ChunkStore::VerifyStoredChunk(c));
    std::lock_guard l(sink_mu_);
    if (!append_status_.ok()) return append_status_;
    if (new_locs_.count(c.key) != 0) return Status::Ok();
    const RecordHeader h = ChunkRecordHeader(c);
    auto loc = store_.writer->Append(h, c.payload);
    if (!loc.ok()) return append_status_ = loc.status();
    new_locs_.emplace(c.key, ChunkLocation{loc->pack_id, loc->offset, h.stored_len, h.raw_len,
                                           c.codec, c.sha256});
    result_.new_stored_bytes += kRecordHeaderBytes + c.payload.size();
    return Status::Ok();
  }

  // The blob's bytes, read back in order from the packs, must be the blob the map claims.
  Status CheckBlobSha() {
    Sha256Stream sha;
    AlignedBuffer buf(kBlockSize);
    for (const ChunkExtent& e : extents_) {
      ChunkLocation loc;
      if (auto it = new_locs_.find(e.key); it != new_locs_.end()) {
        loc = it->second;
      } else {
        LB_ASSIGN_OR_RETURN(loc, store_.Locate(e.key, false));
      }
      if (buf.size() < AlignUp(loc.raw_len)) buf = AlignedBuffer(AlignUp(loc.raw_len));
      LB_RETURN_IF_ERROR(store_.packs->ReadChunk(e.key, loc, buf.span(), false));
      sha.Update(std::span<const std::byte>(buf.data(), e.length));
    }
    if (sha.Finish() != info_.sha256) {
      return Corruption("blob '" + info_.id + "': its chunks do not hash to the blob's SHA-256");
    }
    return Status::Ok();
  }

  Result<ImportResult> Commit() {
    BlobManifest m;
    m.id = info_.id;
    m.size = info_.size;
    m.sha256 = info_.sha256;
    m.chunker = info_.chunker;
    m.extents = extents_;
    auto manifest_bytes = store_.CommitBlob(std::move(m), [&](StoreIndex::Batch& batch) {
      for (const auto& [key, loc] : new_locs_) batch.PutChunk(key, loc);
    });
    if (!manifest_bytes.ok()) return Fail(manifest_bytes.status());
    result_.new_stored_bytes += *manifest_bytes;
    return result_;
  }

  // Forgets the packs this import touched, rolls the writer back, and returns `s` with
  // context.
  Status Fail(Status s) {
    for (const auto& [pack, end] : store_.writer->TouchedEnds()) store_.packs->Forget(pack);
    Status rb = store_.writer->Rollback();
    if (!rb.ok()) return s.WithContext("import (rollback failed: " + rb.ToString() + ")");
    return s.WithContext("import '" + info_.id + "'");
  }

  ChunkStore::Impl& store_;
  const BlobInfo& info_;
  const std::vector<ChunkExtent>& extents_;
  std::unordered_map<ChunkKey, std::uint32_t, ChunkKeyHash> wanted_;  // read-only once filled
  ImportResult result_;  // new_stored_bytes guarded by sink_mu_ while `supply` runs

  std::mutex sink_mu_;
  std::unordered_map<ChunkKey, ChunkLocation, ChunkKeyHash> new_locs_;  // guarded by sink_mu_
  Status append_status_;                                                // guarded by sink_mu_
};

}  // namespace

Status ChunkStore::VerifyStoredChunk(const StoredChunk& c, std::vector<std::byte>* raw_out) {
  auto fail = [&](std::string_view why) {
    return Corruption("chunk " + c.key.ToHex() + ": " + std::string(why));
  };
  std::vector<std::byte> local;
  std::vector<std::byte>& raw = raw_out != nullptr ? *raw_out : local;
  raw.resize(c.raw_len);
  if (c.codec == Codec::kRaw) {
    if (c.payload.size() != c.raw_len) return fail("raw payload has the wrong length");
    std::memcpy(raw.data(), c.payload.data(), c.raw_len);
  } else if (c.codec == Codec::kZstd) {
    const std::size_t n = ZSTD_decompressDCtx(ThreadDCtx(), raw.data(), raw.size(),
                                              c.payload.data(), c.payload.size());
    if (ZSTD_isError(n)) return fail(std::string("zstd: ") + ZSTD_getErrorName(n));
    if (n != c.raw_len) return fail("decompressed length differs");
  } else {
    return fail("unknown codec");
  }
  if (ChunkKeyOf(raw) != c.key) return fail("payload hash mismatch");
  if (Sha256Of(raw) != c.sha256) return fail("payload SHA-256 mismatch");
  return Status::Ok();
}

Result<StoredChunk> ChunkStore::ReadStoredChunk(const ChunkKey& key) {
  ChunkLocation loc;
  std::vector<std::uint8_t> rec;
  LB_RETURN_IF_ERROR(impl_->ReadLocated(
      key,
      [&](const ChunkLocation& at) {
        loc = at;
        rec.resize(kRecordHeaderBytes + loc.stored_len);
        return impl_->packs->ReadAt(loc.pack_id, loc.offset, rec);
      },
      nullptr));
  auto header = DecodeRecordHeader(rec);
  if (!header.ok()) return Corruption("chunk " + key.ToHex() + ": " + header.status().message());
  if (header->type != RecordType::kChunk || header->key != key || header->raw_len != loc.raw_len ||
      header->stored_len != loc.stored_len || header->sha256 != loc.sha256) {
    return Corruption("chunk " + key.ToHex() + ": record header does not match the index");
  }
  StoredChunk c;
  c.key = key;
  c.sha256 = loc.sha256;
  c.codec = header->codec;
  c.raw_len = loc.raw_len;
  c.payload.assign(rec.begin() + kRecordHeaderBytes, rec.end());
  LB_RETURN_IF_ERROR(VerifyStoredChunk(c));
  return c;
}

Result<PutChunksResult> ChunkStore::PutChunks(std::span<const StoredChunk> chunks) {
  return impl_->PutChunks(chunks);
}

Result<ImportResult> ChunkStore::ImportChunkedBlob(const BlobInfo& info,
                                                   const std::vector<ChunkExtent>& extents,
                                                   const ChunkSupplier& supply) {
  return impl_->ImportChunked(info, extents, supply);
}

Result<PutChunksResult> ChunkStore::Impl::PutChunks(std::span<const StoredChunk> chunks) {
  LB_RETURN_IF_ERROR(RequireWriter("PutChunks"));
  for (const StoredChunk& c : chunks) LB_RETURN_IF_ERROR(ChunkStore::VerifyStoredChunk(c));
  std::lock_guard lock(writer_mu);
  PutChunksResult result;
  std::unordered_set<ChunkKey, ChunkKeyHash> seen;
  std::vector<std::pair<ChunkKey, ChunkLocation>> new_locs;
  writer->Begin();
  auto fail = [&](Status s) -> Status {
    for (const auto& [pack, end] : writer->TouchedEnds()) packs->Forget(pack);
    Status rb = writer->Rollback();
    if (!rb.ok()) return s.WithContext("put chunks (rollback failed: " + rb.ToString() + ")");
    return s.WithContext("put chunks");
  };
  for (const StoredChunk& c : chunks) {
    auto existing = index->GetChunk(c.key);
    if (!existing.ok()) return fail(existing.status());
    if (existing->has_value()) {
      if ((*existing)->sha256 != c.sha256) {
        return fail(Corruption("chunk key " + c.key.ToHex() +
                               " is already stored with a different SHA-256"));
      }
      continue;
    }
    if (!seen.insert(c.key).second) continue;
    const RecordHeader h = ChunkRecordHeader(c);
    auto loc = writer->Append(h, c.payload);
    if (!loc.ok()) return fail(loc.status());
    new_locs.push_back({c.key, ChunkLocation{loc->pack_id, loc->offset, h.stored_len, h.raw_len,
                                             c.codec, c.sha256}});
    ++result.new_chunks;
    result.new_stored_bytes += kRecordHeaderBytes + c.payload.size();
  }
  if (new_locs.empty()) return result;
  if (Status s = writer->Sync(); !s.ok()) return fail(s);
  auto batch = index->NewBatch();
  for (const auto& [key, loc] : new_locs) batch.PutChunk(key, loc);
  for (const auto& [pack, end] : writer->TouchedEnds()) batch.PutPackEnd(pack, end);
  if (Status s = index->Commit(batch); !s.ok()) return fail(s);
  return result;
}

Result<ImportResult> ChunkStore::Impl::ImportChunked(const BlobInfo& info,
                                                     const std::vector<ChunkExtent>& extents,
                                                     const ChunkSupplier& supply) {
  LB_RETURN_IF_ERROR(RequireWriter("import"));
  LB_RETURN_IF_ERROR(ChunkStore::ValidateBlobId(info.id));
  if (Status s = info.chunker.Validate(); !s.ok()) {
    return Corruption("blob '" + info.id + "': " + s.message());
  }
  LB_RETURN_IF_ERROR(CheckMap(info, extents));
  std::lock_guard lock(writer_mu);
  ChunkedImport import(*this, info, extents);
  return import.Run(supply);
}

}  // namespace lazyblob
