// ChunkStore::Impl::Gc: reclaims chunks no blob map references (FORMAT.md "Gc").
//
// Packs holding a dead chunk are copied, without their dead records, into new packs;
// the new packs are fsynced, one index batch repoints the live records and forgets the
// old packs' pack_end entries, then the old packs are unlinked. A crash before the
// commit leaves the new packs without pack_end (deleted by the next writer); a crash
// after it leaves old packs without pack_end (likewise deleted).
//
// A pack is only dropped when every record in it that stays was read and copied: a live
// chunk or manifest whose record the scan had to skip (damage) makes gc (and eviction)
// fail with kCorruption and change nothing, so a corrupt chunk never silently becomes a
// missing one. Entries of chunks that go are deleted by the index, not by what the scan
// could read of their records.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "store/chunk_store_impl.h"
#include "store/pack_scanner.h"

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
  // No SERVING lock: gc runs while daemons serve. Every blob a daemon leases has its map
  // in the index (rm of a leased blob fails with kBusy; ids are never re-pointed), so the
  // roots below include every served chunk, and readers follow moved records
  // (FORMAT.md "gc while a daemon serves").
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
  if (!out.ok()) return out.status();  // says what it kept; callers name the verb
  result.bytes_reclaimed = out->old_bytes > out->new_bytes ? out->old_bytes - out->new_bytes : 0;
  return result;
}

// One record of a pack being rewritten: copied forward (a kept chunk, a live manifest, a
// tombstone that still matters) with `batch` repointing it, or left behind.
Status ChunkStore::Impl::CopyRecordForward(std::uint32_t pack, const ScannedRecord& r,
                                           const KeepChunkFn& keep,
                                           const LiveManifests& live_manifests,
                                           StoreIndex::Batch& batch, RewriteOutcome& out,
                                           Copied& copied) {
  auto header = EncodeRecordHeader(r.header);
  std::vector<std::uint8_t> bytes(header.begin(), header.end());
  bytes.insert(bytes.end(), r.payload.begin(), r.payload.end());
  if (r.header.type == RecordType::kChunk) {
    LB_ASSIGN_OR_RETURN(auto loc, index->GetChunk(r.header.key));
    const bool indexed_here = loc.has_value() && loc->pack_id == pack && loc->offset == r.offset;
    // A stray copy (crash debris) or moved; a chunk that goes is deleted by FinishPack.
    if (!indexed_here || !keep(r.header.key)) return Status::Ok();
    LB_ASSIGN_OR_RETURN(auto nloc, writer->AppendEncoded(bytes));
    ChunkLocation moved = *loc;
    moved.pack_id = nloc.pack_id;
    moved.offset = nloc.offset;
    batch.PutChunk(r.header.key, moved);
    copied.chunks.insert(r.header.key);
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
    copied.manifest_offsets.insert(r.offset);
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

Status ChunkStore::Impl::FinishPack(std::uint32_t pack,
                                    const std::vector<std::pair<ChunkKey, ChunkLocation>>& indexed,
                                    const KeepChunkFn& keep, const LiveManifests& live_manifests,
                                    const Copied& copied, const std::vector<std::string>& problems,
                                    StoreIndex::Batch& batch, RewriteOutcome& out) {
  const std::string why = problems.empty() ? "" : " (" + problems.front() + ")";
  auto refuse = [&](const std::string& what) {
    return Corruption("pack " + std::to_string(pack) + " holds " + what +
                      " that could not be read" + why +
                      "; the pack is kept and nothing was collected. 'lazyblob verify' "
                      "names the blobs it breaks; gc can drop the pack once they are removed");
  };
  for (const auto& [key, loc] : indexed) {
    if (keep(key)) {
      if (!copied.chunks.count(key)) return refuse("live chunk " + key.ToHex());
      continue;
    }
    batch.DeleteChunk(key);
    ++out.chunks_dropped;
    out.dropped_bytes += kRecordHeaderBytes + loc.stored_len;
  }
  for (auto it = live_manifests.lower_bound({pack, 0});
       it != live_manifests.end() && it->first.first == pack; ++it) {
    if (!copied.manifest_offsets.count(it->first.second)) {
      return refuse("the manifest of live blob '" + it->second + "'");
    }
  }
  return Status::Ok();
}

Result<ChunkStore::Impl::RewriteOutcome> ChunkStore::Impl::RewritePacks(
    const std::vector<std::uint32_t>& pack_ids, const KeepChunkFn& keep,
    const LiveManifests& live_manifests) {
  // What the index places in the packs being rewritten.
  std::map<std::uint32_t, std::vector<std::pair<ChunkKey, ChunkLocation>>> indexed;
  for (std::uint32_t pack : pack_ids) indexed[pack];
  LB_RETURN_IF_ERROR(index->ForEachChunk([&](const ChunkKey& k, const ChunkLocation& l) {
    if (auto it = indexed.find(l.pack_id); it != indexed.end()) it->second.emplace_back(k, l);
    return Status::Ok();
  }));
  RewriteOutcome out;
  writer->Begin();
  writer->StartNewPack();
  auto fail = [&](Status s) {
    for (const auto& [pack, end] : writer->TouchedEnds()) packs->Forget(pack);
    writer->Rollback().IgnoreError();
    return s;
  };
  auto batch = index->NewBatch();
  for (std::uint32_t pack : pack_ids) {
    out.old_bytes += FileSize(PackSet::PackPath(options.path, pack));
    auto scanner = PackScanner::Open(options.path, pack);
    if (!scanner.ok()) return fail(scanner.status());
    std::vector<std::string> problems;
    Copied copied;
    while (true) {
      auto next = (*scanner)->Next(&problems);
      if (!next.ok()) return fail(next.status());
      if (!next->has_value()) break;
      Status s = CopyRecordForward(pack, **next, keep, live_manifests, batch, out, copied);
      if (!s.ok()) return fail(s);
    }
    Status s = FinishPack(pack, indexed[pack], keep, live_manifests, copied, problems, batch, out);
    if (!s.ok()) return fail(s);
  }
  if (Status s = writer->Sync(); !s.ok()) return fail(s);
  for (const auto& [pack, end] : writer->TouchedEnds()) batch.PutPackEnd(pack, end);
  for (std::uint32_t pack : pack_ids) batch.DeletePackEnd(pack);
  if (Status s = index->Commit(batch); !s.ok()) return fail(s);
  // Committed: a reader that located a chunk in an old pack before the commit either still
  // reads it through an fd it holds or finds the pack gone and looks the chunk up again
  // after a catch-up (Impl::ReadLocated).
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
