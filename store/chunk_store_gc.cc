// ChunkStore::Impl::Gc: reclaims chunks no blob map references (FORMAT.md "Gc").
//
// Packs holding a dead chunk are copied, without their dead records, into new packs;
// the new packs are fsynced, one index batch repoints the live records and forgets the
// old packs' pack_end entries, then the old packs are unlinked. A crash before the
// commit leaves the new packs without pack_end (deleted by the next writer); a crash
// after it leaves old packs without pack_end (likewise deleted).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "store/chunk_store_impl.h"
#include "store/pack_scanner.h"
#include "store/store_lock.h"

namespace lazyblob {
namespace {

struct GcPlan {
  std::unordered_set<ChunkKey, ChunkKeyHash> referenced;
  std::map<std::uint32_t, std::uint64_t> dead_bytes;  // packs to rewrite
  std::uint64_t dead_chunks = 0;
  // (pack, offset) of each live blob's manifest -> id.
  ChunkStore::Impl::LiveManifests live_manifests;
};

Result<GcPlan> MakePlan(StoreIndex* index) {
  GcPlan plan;
  LB_RETURN_IF_ERROR(
      index->ForEachMap([&](std::string_view, const std::vector<ChunkExtent>& extents) {
        for (const ChunkExtent& e : extents) plan.referenced.insert(e.key);
        return Status::Ok();
      }));
  LB_RETURN_IF_ERROR(index->ForEachBlob([&](const BlobRecord& r) {
    plan.live_manifests[{r.manifest_pack, r.manifest_offset}] = r.info.id;
    return Status::Ok();
  }));
  LB_RETURN_IF_ERROR(index->ForEachChunk([&](const ChunkKey& k, const ChunkLocation& l) {
    if (!plan.referenced.count(k)) {
      ++plan.dead_chunks;
      plan.dead_bytes[l.pack_id] += kRecordHeaderBytes + l.stored_len;
    }
    return Status::Ok();
  }));
  return plan;
}

std::uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

Result<GcResult> ChunkStore::Impl::Gc(bool dry_run) {
  LB_RETURN_IF_ERROR(RequireWriter("gc"));
  std::lock_guard lock(writer_mu);
  UniqueFd serving_guard;
  if (!dry_run) {
    LB_ASSIGN_OR_RETURN(serving_guard, LockStoreAgainstServing(options.path, "gc"));
  }
  LB_ASSIGN_OR_RETURN(GcPlan plan, MakePlan(index.get()));
  GcResult result;
  result.dry_run = dry_run;
  result.chunks_removed = plan.dead_chunks;
  result.packs_rewritten = plan.dead_bytes.size();
  result.packs_deleted = plan.dead_bytes.size();
  if (dry_run || plan.dead_bytes.empty()) {
    for (const auto& [pack, bytes] : plan.dead_bytes) result.bytes_reclaimed += bytes;
    if (!dry_run) result.packs_rewritten = result.packs_deleted = 0;
    return result;
  }

  std::vector<std::uint32_t> pack_ids;
  for (const auto& [pack, unused] : plan.dead_bytes) pack_ids.push_back(pack);
  auto out = RewritePacks(
      pack_ids, [&](const ChunkKey& key) { return plan.referenced.count(key) != 0; },
      plan.live_manifests);
  if (!out.ok()) return out.status().WithContext("gc");
  result.bytes_reclaimed = out->old_bytes > out->new_bytes ? out->old_bytes - out->new_bytes : 0;
  return result;
}

// One record of a pack being rewritten: copied forward (a kept chunk, a live manifest, a
// tombstone that still matters) with `batch` repointing it, or dropped.
Status ChunkStore::Impl::CopyRecordForward(std::uint32_t pack, const ScannedRecord& r,
                                           const KeepChunkFn& keep,
                                           const LiveManifests& live_manifests,
                                           StoreIndex::Batch& batch, RewriteOutcome& out) {
  auto header = EncodeRecordHeader(r.header);
  std::vector<std::uint8_t> bytes(header.begin(), header.end());
  bytes.insert(bytes.end(), r.payload.begin(), r.payload.end());
  if (r.header.type == RecordType::kChunk) {
    LB_ASSIGN_OR_RETURN(auto loc, index->GetChunk(r.header.key));
    const bool indexed_here = loc.has_value() && loc->pack_id == pack && loc->offset == r.offset;
    if (!indexed_here) return Status::Ok();  // a stray copy (crash debris) or moved
    if (!keep(r.header.key)) {
      batch.DeleteChunk(r.header.key);
      ++out.chunks_dropped;
      out.dropped_bytes += r.size();
      return Status::Ok();
    }
    LB_ASSIGN_OR_RETURN(auto nloc, writer->AppendEncoded(bytes));
    ChunkLocation moved = *loc;
    moved.pack_id = nloc.pack_id;
    moved.offset = nloc.offset;
    batch.PutChunk(r.header.key, moved);
    ++out.chunks_kept;
  } else if (r.header.type == RecordType::kManifest) {
    auto it = live_manifests.find({pack, r.offset});
    if (it == live_manifests.end()) return Status::Ok();  // removed or superseded
    LB_ASSIGN_OR_RETURN(auto nloc, writer->AppendEncoded(bytes));
    auto rec = index->GetBlob(it->second);
    auto extents = index->GetMap(it->second);
    if (!rec.ok() || !extents.ok() || !rec->has_value() || !extents->has_value()) {
      return Internal("blob '" + it->second + "' vanished");
    }
    BlobRecord updated = **rec;
    updated.manifest_pack = nloc.pack_id;
    updated.manifest_offset = nloc.offset;
    batch.PutBlob(updated, **extents);
  } else {
    auto t = DecodeTombstone(r.payload);
    if (!t.ok()) return Status::Ok();
    LB_ASSIGN_OR_RETURN(auto live, index->GetBlob(t->id));
    if (live.has_value()) return Status::Ok();  // re-imported since: a newer manifest wins
    LB_RETURN_IF_ERROR(writer->AppendEncoded(bytes).status());
  }
  out.new_bytes += r.size();
  return Status::Ok();
}

Result<ChunkStore::Impl::RewriteOutcome> ChunkStore::Impl::RewritePacks(
    const std::vector<std::uint32_t>& pack_ids, const KeepChunkFn& keep,
    const LiveManifests& live_manifests) {
  RewriteOutcome out;
  writer->Begin();
  writer->StartNewPack();
  auto fail = [&](Status s) {
    for (const auto& [pack, end] : writer->TouchedEnds()) packs->Forget(pack);
    writer->Rollback().IgnoreError();
    return s;
  };
  auto batch = index->NewBatch();
  std::vector<std::string> problems;
  for (std::uint32_t pack : pack_ids) {
    out.old_bytes += FileSize(PackSet::PackPath(options.path, pack));
    auto scanner = PackScanner::Open(options.path, pack);
    if (!scanner.ok()) return fail(scanner.status());
    while (true) {
      auto next = (*scanner)->Next(&problems);
      if (!next.ok()) return fail(next.status());
      if (!next->has_value()) break;
      Status s = CopyRecordForward(pack, **next, keep, live_manifests, batch, out);
      if (!s.ok()) return fail(s);
    }
  }
  if (Status s = writer->Sync(); !s.ok()) return fail(s);
  for (const auto& [pack, end] : writer->TouchedEnds()) batch.PutPackEnd(pack, end);
  for (std::uint32_t pack : pack_ids) batch.DeletePackEnd(pack);
  if (Status s = index->Commit(batch); !s.ok()) return fail(s);
  // Committed: readers that located a chunk in an old pack before the commit either still
  // read it through their open fd or find the new location on their retry (ReadChunk).
  for (std::uint32_t pack : pack_ids) {
    const std::string path = PackSet::PackPath(options.path, pack);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno(errno, "unlink " + path);
    }
    packs->Forget(pack);
  }
  return out;
}

}  // namespace lazyblob
