// ChunkStore::Impl: Verify, Export, Remove (FORMAT.md "Operations").
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <tuple>
#include <unordered_map>

#include "core/aligned_buffer.h"
#include "store/blob_lease.h"
#include "store/chunk_store_impl.h"
#include "store/hashing.h"
#include "store/store_lock.h"

namespace lazyblob {
namespace {

Status WriteAll(int fd, const std::byte* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::FromErrno(errno, "write export output");
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

Result<VerifyReport> ChunkStore::Impl::Verify(const std::optional<std::string>& blob_id,
                                              const VerifyProgress& progress) {
  LB_RETURN_IF_ERROR(CatchUpIfReader());
  std::unique_lock lock(writer_mu, std::defer_lock);
  if (writer != nullptr) lock.lock();  // no gc/import moving things underneath
  VerifyReport report;
  ChunkUsers users;
  auto add_map = [&](std::string_view id, const std::vector<ChunkExtent>& extents) {
    ++report.blobs_checked;
    for (const ChunkExtent& e : extents) {
      auto& v = users[e.key];
      if (v.empty() || v.back() != id) v.emplace_back(id);
    }
    return Status::Ok();
  };
  std::vector<std::pair<ChunkKey, ChunkLocation>> todo;
  if (blob_id) {
    LB_ASSIGN_OR_RETURN(auto map, LoadMap(*blob_id, true));
    LB_RETURN_IF_ERROR(add_map(map->id, map->extents));
  } else {
    LB_RETURN_IF_ERROR(index->ForEachMap(add_map));
    LB_RETURN_IF_ERROR(index->ForEachChunk([&](const ChunkKey& k, const ChunkLocation& l) {
      todo.emplace_back(k, l);
      return Status::Ok();
    }));
  }
  // Referenced chunks the index lacks (or, for one blob, all of its chunks).
  for (const auto& [key, ids] : users) {
    LB_ASSIGN_OR_RETURN(auto loc, index->GetChunk(key));
    if (!loc) {
      report.missing.push_back({key, ids});
    } else if (blob_id) {
      todo.emplace_back(key, *loc);
    }
  }
  LB_RETURN_IF_ERROR(VerifyChunks(std::move(todo), users, progress, report));
  return report;
}

Status ChunkStore::Impl::VerifyChunks(std::vector<std::pair<ChunkKey, ChunkLocation>> todo,
                                      const ChunkUsers& users, const VerifyProgress& progress,
                                      VerifyReport& report) {
  std::sort(todo.begin(), todo.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.pack_id, a.second.offset) <
           std::tie(b.second.pack_id, b.second.offset);
  });
  AlignedBuffer buf(kBlockSize);
  for (const auto& [key, loc] : todo) {
    if (buf.size() < AlignUp(loc.raw_len)) buf = AlignedBuffer(AlignUp(loc.raw_len));
    Status s = packs->ReadChunk(key, loc, buf.span(), true);
    if (s.code() == StatusCode::kNotFound) {
      // Moved by a gc running meanwhile: check it where it is now.
      const ChunkKey k = key;
      s = ReadLocated(
          k, [&](const ChunkLocation& now) { return packs->ReadChunk(k, now, buf.span(), true); },
          nullptr);
      if (s.code() == StatusCode::kNotFound && !users.count(key)) continue;  // collected
    }
    ++report.chunks_checked;
    if (!s.ok()) {
      if (s.code() != StatusCode::kCorruption && s.code() != StatusCode::kNotFound) return s;
      auto it = users.find(key);
      report.corrupt.push_back({key, loc.pack_id, loc.offset, s.message(),
                                it == users.end() ? std::vector<std::string>() : it->second});
    }
    if (progress) progress(report.chunks_checked, todo.size());
  }
  return Status::Ok();
}

Status ChunkStore::Impl::Export(std::string_view blob_id, int out_fd) {
  LB_ASSIGN_OR_RETURN(auto map, LoadMap(blob_id, true));
  constexpr std::size_t kOutBytes = 4u << 20;
  std::vector<std::byte> out;
  out.reserve(kOutBytes + (1u << 24));
  AlignedBuffer buf(kBlockSize);
  for (const ChunkExtent& e : map->extents) {
    if (buf.size() < AlignUp(e.length)) buf = AlignedBuffer(AlignUp(e.length));
    Status s = ReadLocated(
        e.key,
        [&](const ChunkLocation& loc) {
          if (loc.raw_len != e.length) {
            return Corruption("chunk " + e.key.ToHex() + " has a bad length");
          }
          return packs->ReadChunk(e.key, loc, buf.span(), true);
        },
        nullptr);
    if (!s.ok()) return s.WithContext("export '" + map->id + "'");
    out.insert(out.end(), buf.data(), buf.data() + e.length);
    if (out.size() >= kOutBytes) {
      LB_RETURN_IF_ERROR(WriteAll(out_fd, out.data(), out.size()));
      out.clear();
    }
  }
  return WriteAll(out_fd, out.data(), out.size());
}

Status ChunkStore::ExportToPath(std::string_view blob_id, const std::string& out_path) {
  UniqueFd fd(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Status::FromErrno(errno, "create " + out_path);
  Status s = impl_->Export(blob_id, fd.get());
  if (s.ok() && ::close(fd.release()) != 0) s = Status::FromErrno(errno, "close " + out_path);
  if (!s.ok()) ::unlink(out_path.c_str());
  return s;
}

Status ChunkStore::Impl::Remove(std::string_view blob_id) {
  LB_RETURN_IF_ERROR(RequireWriter("rm"));
  std::lock_guard lock(writer_mu);
  LB_ASSIGN_OR_RETURN(auto rec, index->GetBlob(blob_id));
  if (!rec) return NotFound("blob '" + std::string(blob_id) + "' is not in the store");
  // Held until the removal is committed: no daemon can lease the blob meanwhile.
  LB_ASSIGN_OR_RETURN(UniqueFd lease_lock, LockBlobAgainstLeases(options.path, blob_id));
  Tombstone t{meta.next_seq, std::string(blob_id), static_cast<std::int64_t>(std::time(nullptr))};
  std::vector<std::uint8_t> payload = EncodeTombstone(t);
  const auto len = static_cast<std::uint32_t>(payload.size());
  RecordHeader h{RecordType::kTombstone,
                 Codec::kRaw,
                 ChunkKey{},
                 Sha256Of(std::as_bytes(std::span(payload))),
                 len,
                 len};
  writer->Begin();
  auto fail = [&](Status s) {
    writer->Rollback().IgnoreError();
    return s.WithContext("rm '" + std::string(blob_id) + "'");
  };
  auto loc = writer->Append(h, payload);
  if (!loc.ok()) return fail(loc.status());
  if (Status s = writer->Sync(); !s.ok()) return fail(s);
  auto batch = index->NewBatch();
  batch.DeleteBlob(blob_id);
  StoreMeta next = meta;
  ++next.next_seq;
  batch.PutMeta(next);
  for (const auto& [pack, end] : writer->TouchedEnds()) batch.PutPackEnd(pack, end);
  if (Status s = index->Commit(batch); !s.ok()) return fail(s);
  meta.next_seq = next.next_seq;  // only next_seq changes; readers use the rest
  // The lease file goes with the blob, unlinked while this LOCK_EX still bars leases
  // (BlobLease::Acquire retries when its lock lands on an unlinked file). Best effort:
  // a leftover file is only a few bytes.
  ::unlink(BlobLease::LockPath(options.path, blob_id).c_str());
  return Status::Ok();
}

}  // namespace lazyblob
