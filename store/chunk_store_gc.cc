// ChunkStore::Impl::Gc: reclaims chunks no blob map references (FORMAT.md "Gc").
//
// Packs holding a dead chunk are copied, without their dead records, into new packs;
// the new packs are fsynced, one index batch repoints the live records and forgets the
// old packs' pack_end entries, then the old packs are unlinked. A crash before the
// commit leaves the new packs without pack_end (deleted by the next writer); a crash
// after it leaves old packs without pack_end (likewise deleted).
//
// A pack is only dropped when every live record in it was read and copied: a live chunk
// or manifest whose record the scan had to skip (damage) makes gc fail with kCorruption
// and change nothing, so a corrupt chunk never silently becomes a missing one.
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
  std::vector<ChunkKey> dead_keys;                    // unreferenced chunk entries
  // Referenced chunks the index places in a pack to rewrite: each must be copied.
  std::map<std::uint32_t, std::vector<ChunkKey>> live_chunks;
  // (pack, offset) of each live blob's manifest -> id.
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::string> live_manifests;
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
  std::map<std::uint32_t, std::vector<ChunkKey>> live;
  LB_RETURN_IF_ERROR(index->ForEachChunk([&](const ChunkKey& k, const ChunkLocation& l) {
    if (plan.referenced.count(k)) {
      live[l.pack_id].push_back(k);
    } else {
      plan.dead_keys.push_back(k);
      plan.dead_bytes[l.pack_id] += kRecordHeaderBytes + l.stored_len;
    }
    return Status::Ok();
  }));
  for (const auto& [pack, bytes] : plan.dead_bytes) plan.live_chunks[pack] = std::move(live[pack]);
  return plan;
}

std::uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// Copies the live records of `pack` (chunks the index places there and blobs use, live
// manifests, tombstones of ids not live) to the writer and stages their new locations in
// `batch`. kCorruption when a live record could not be read: dropping the pack would turn
// a damaged chunk (or manifest) into a missing one, so it must stay.
Status CopyLiveRecords(const std::string& store_dir, const GcPlan& plan, std::uint32_t pack,
                       StoreIndex* index, PackWriter* writer, StoreIndex::Batch* batch,
                       std::uint64_t* new_bytes) {
  LB_ASSIGN_OR_RETURN(auto scanner, PackScanner::Open(store_dir, pack));
  std::vector<std::string> problems;
  std::unordered_set<ChunkKey, ChunkKeyHash> chunks_copied;
  std::set<std::uint64_t> manifests_copied;
  while (true) {
    LB_ASSIGN_OR_RETURN(auto next, scanner->Next(&problems));
    if (!next) break;
    const ScannedRecord& r = *next;
    auto header = EncodeRecordHeader(r.header);
    std::vector<std::uint8_t> bytes(header.begin(), header.end());
    bytes.insert(bytes.end(), r.payload.begin(), r.payload.end());
    if (r.header.type == RecordType::kChunk) {
      if (!plan.referenced.count(r.header.key)) continue;  // dead: its entry goes
      LB_ASSIGN_OR_RETURN(auto loc, index->GetChunk(r.header.key));
      if (!loc || loc->pack_id != pack || loc->offset != r.offset) continue;  // a stray copy
      LB_ASSIGN_OR_RETURN(RecordLocation moved_to, writer->AppendEncoded(bytes));
      ChunkLocation moved = *loc;
      moved.pack_id = moved_to.pack_id;
      moved.offset = moved_to.offset;
      batch->PutChunk(r.header.key, moved);
      chunks_copied.insert(r.header.key);
    } else if (r.header.type == RecordType::kManifest) {
      auto it = plan.live_manifests.find({pack, r.offset});
      if (it == plan.live_manifests.end()) continue;  // removed or superseded
      LB_ASSIGN_OR_RETURN(RecordLocation moved_to, writer->AppendEncoded(bytes));
      LB_ASSIGN_OR_RETURN(auto rec, index->GetBlob(it->second));
      LB_ASSIGN_OR_RETURN(auto extents, index->GetMap(it->second));
      if (!rec || !extents) return Internal("gc: blob '" + it->second + "' vanished");
      rec->manifest_pack = moved_to.pack_id;
      rec->manifest_offset = moved_to.offset;
      batch->PutBlob(*rec, *extents);
      manifests_copied.insert(r.offset);
    } else {
      auto t = DecodeTombstone(r.payload);
      if (!t.ok()) continue;
      LB_ASSIGN_OR_RETURN(auto live, index->GetBlob(t->id));
      if (live) continue;  // re-imported since: a newer manifest wins
      LB_RETURN_IF_ERROR(writer->AppendEncoded(bytes).status());
    }
    *new_bytes += r.size();
  }
  const std::string why = problems.empty() ? "" : " (" + problems.front() + ")";
  auto refuse = [&](const std::string& what) {
    return Corruption("pack " + std::to_string(pack) + " holds " + what +
                      " that could not be read" + why +
                      "; the pack is kept and nothing was collected. `lazyblob verify` "
                      "names the blobs it breaks; gc can drop the pack once they are removed");
  };
  for (const ChunkKey& key : plan.live_chunks.at(pack)) {
    if (!chunks_copied.count(key)) return refuse("live chunk " + key.ToHex());
  }
  for (auto it = plan.live_manifests.lower_bound({pack, 0});
       it != plan.live_manifests.end() && it->first.first == pack; ++it) {
    if (!manifests_copied.count(it->first.second)) {
      return refuse("the manifest of live blob '" + it->second + "'");
    }
  }
  return Status::Ok();
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
  result.chunks_removed = plan.dead_keys.size();
  result.packs_rewritten = plan.dead_bytes.size();
  result.packs_deleted = plan.dead_bytes.size();
  if (dry_run || plan.dead_bytes.empty()) {
    for (const auto& [pack, bytes] : plan.dead_bytes) result.bytes_reclaimed += bytes;
    if (!dry_run) result.packs_rewritten = result.packs_deleted = 0;
    return result;
  }

  std::uint64_t old_bytes = 0, new_bytes = 0;
  writer->Begin();
  writer->StartNewPack();
  auto fail = [&](Status s) {
    writer->Rollback().IgnoreError();
    return s.WithContext("gc");
  };
  auto batch = index->NewBatch();
  for (const auto& [pack, unused] : plan.dead_bytes) {
    old_bytes += FileSize(PackSet::PackPath(options.path, pack));
    Status s =
        CopyLiveRecords(options.path, plan, pack, index.get(), writer.get(), &batch, &new_bytes);
    if (!s.ok()) return fail(s);
  }
  // Dead entries go by the index, not by what the scan could read of their records.
  for (const ChunkKey& key : plan.dead_keys) batch.DeleteChunk(key);
  if (Status s = writer->Sync(); !s.ok()) return fail(s);
  for (const auto& [pack, end] : writer->TouchedEnds()) batch.PutPackEnd(pack, end);
  for (const auto& [pack, unused] : plan.dead_bytes) batch.DeletePackEnd(pack);
  if (Status s = index->Commit(batch); !s.ok()) return fail(s);
  for (const auto& [pack, unused] : plan.dead_bytes) {
    const std::string path = PackSet::PackPath(options.path, pack);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno(errno, "gc: unlink " + path);
    }
    packs->Forget(pack);
  }
  result.bytes_reclaimed = old_bytes > new_bytes ? old_bytes - new_bytes : 0;
  return result;
}

}  // namespace lazyblob
