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
  ImportResult result;
  result.id = info.id;
  result.size = info.size;
  result.chunks = extents.size();
  LB_ASSIGN_OR_RETURN(auto existing, index->GetBlob(info.id));
  if (existing) {
    if (existing->info.size != info.size || existing->info.sha256 != info.sha256) {
      return AlreadyExists("blob '" + info.id + "' already exists with other content");
    }
    result.already_present = true;
    return result;
  }

  // The chunks to ask for: each key once, with the length the map gives it.
  std::vector<ChunkExtent> missing;
  std::unordered_map<ChunkKey, std::uint32_t, ChunkKeyHash> wanted;
  for (const ChunkExtent& e : extents) {
    if (wanted.count(e.key) != 0) continue;
    LB_ASSIGN_OR_RETURN(auto loc, index->GetChunk(e.key));
    if (loc && loc->raw_len != e.length) {
      return Corruption("chunk " + e.key.ToHex() + " is stored with length " +
                        std::to_string(loc->raw_len) + ", the map says " +
                        std::to_string(e.length));
    }
    wanted.emplace(e.key, e.length);
    if (!loc) missing.push_back(e);
  }

  std::mutex sink_mu;
  std::unordered_map<ChunkKey, ChunkLocation, ChunkKeyHash> new_locs;  // guarded by sink_mu
  Status append_status;                                                // guarded by sink_mu
  writer->Begin();
  const ChunkSink sink = [&](StoredChunk c) -> Status {
    auto it = wanted.find(c.key);
    if (it == wanted.end() || it->second != c.raw_len) {
      return Corruption("chunk " + c.key.ToHex() + " is not in blob '" + info.id +
                        "' with that length");
    }
    LB_RETURN_IF_ERROR(ChunkStore::VerifyStoredChunk(c));
    std::lock_guard l(sink_mu);
    if (!append_status.ok()) return append_status;
    if (new_locs.count(c.key) != 0) return Status::Ok();
    const RecordHeader h = ChunkRecordHeader(c);
    auto loc = writer->Append(h, c.payload);
    if (!loc.ok()) return append_status = loc.status();
    new_locs.emplace(c.key, ChunkLocation{loc->pack_id, loc->offset, h.stored_len, h.raw_len,
                                          c.codec, c.sha256});
    result.new_stored_bytes += kRecordHeaderBytes + c.payload.size();
    return Status::Ok();
  };
  auto fail = [&](Status s) -> Status {
    for (const auto& [pack, end] : writer->TouchedEnds()) packs->Forget(pack);
    Status rb = writer->Rollback();
    if (!rb.ok()) return s.WithContext("import (rollback failed: " + rb.ToString() + ")");
    return s.WithContext("import '" + info.id + "'");
  };
  if (!missing.empty()) {
    if (Status s = supply(missing, sink); !s.ok()) return fail(s);
  }
  for (const ChunkExtent& e : missing) {
    if (new_locs.count(e.key) == 0) {
      return fail(Corruption("chunk " + e.key.ToHex() + " was not supplied"));
    }
  }
  result.new_chunks = new_locs.size();
  if (Status s = writer->Sync(); !s.ok()) return fail(s);

  // The blob's bytes, read back in order from the packs, must be the blob the map claims.
  Sha256Stream sha;
  AlignedBuffer buf(kBlockSize);
  for (const ChunkExtent& e : extents) {
    ChunkLocation loc;
    if (auto it = new_locs.find(e.key); it != new_locs.end()) {
      loc = it->second;
    } else {
      auto found = Locate(e.key, false);
      if (!found.ok()) return fail(found.status());
      loc = *found;
    }
    if (buf.size() < AlignUp(loc.raw_len)) buf = AlignedBuffer(AlignUp(loc.raw_len));
    if (Status s = packs->ReadChunk(e.key, loc, buf.span(), false); !s.ok()) return fail(s);
    sha.Update(std::span<const std::byte>(buf.data(), e.length));
  }
  if (sha.Finish() != info.sha256) {
    return fail(Corruption("blob '" + info.id + "': its chunks do not hash to the blob's SHA-256"));
  }

  BlobManifest m;
  m.id = info.id;
  m.size = info.size;
  m.sha256 = info.sha256;
  m.chunker = info.chunker;
  m.extents = extents;
  auto manifest_bytes = CommitBlob(std::move(m), [&](StoreIndex::Batch& batch) {
    for (const auto& [key, loc] : new_locs) batch.PutChunk(key, loc);
  });
  if (!manifest_bytes.ok()) return fail(manifest_bytes.status());
  result.new_stored_bytes += *manifest_bytes;
  return result;
}

}  // namespace lazyblob
