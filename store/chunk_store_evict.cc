// ChunkStore::Impl::EvictPacks: bounds a store used as a cache of fetched chunks
// (lazyblobd's origin cache). Whole packs go, oldest first; what must stay (pinned chunks,
// chunks a blob map references, live manifests) is carried forward by the same rewrite as
// gc (RewritePacks), so eviction is crash safe the same way: one index batch decides.
#include <sys/stat.h>

#include <unordered_set>

#include "store/chunk_store_impl.h"

namespace lazyblob {
namespace {

// (pack id, file size), by id.
Result<std::vector<std::pair<std::uint32_t, std::uint64_t>>> PackSizes(const std::string& dir) {
  LB_ASSIGN_OR_RETURN(auto ids, PackSet::ListPackIds(dir));
  std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
  for (std::uint32_t id : ids) {
    struct stat st {};
    if (::stat(PackSet::PackPath(dir, id).c_str(), &st) == 0) {
      out.emplace_back(id, static_cast<std::uint64_t>(st.st_size));
    }
  }
  return out;
}

std::uint64_t Total(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& sizes) {
  std::uint64_t total = 0;
  for (const auto& [id, size] : sizes) total += size;
  return total;
}

}  // namespace

Result<ChunkStore::Impl::LiveManifests> ChunkStore::Impl::LiveManifestRecords() {
  LiveManifests live;
  LB_RETURN_IF_ERROR(index->ForEachBlob([&](const BlobRecord& r) {
    live[{r.manifest_pack, r.manifest_offset}] = r.info.id;
    return Status::Ok();
  }));
  return live;
}

Result<EvictResult> ChunkStore::Impl::EvictPacks(std::uint64_t target_bytes,
                                                 const KeepChunkFn& pinned) {
  LB_RETURN_IF_ERROR(RequireWriter("evict"));
  std::lock_guard lock(writer_mu);
  EvictResult result;
  LB_ASSIGN_OR_RETURN(auto sizes, PackSizes(options.path));
  std::uint64_t total = Total(sizes);
  result.pack_bytes = total;
  if (total <= target_bytes) return result;
  std::vector<std::uint32_t> victims;
  for (const auto& [id, size] : sizes) {
    if (total <= target_bytes) break;
    victims.push_back(id);
    total -= size;
  }
  std::unordered_set<ChunkKey, ChunkKeyHash> referenced;
  LB_RETURN_IF_ERROR(
      index->ForEachMap([&](std::string_view, const std::vector<ChunkExtent>& extents) {
        for (const ChunkExtent& e : extents) referenced.insert(e.key);
        return Status::Ok();
      }));
  LB_ASSIGN_OR_RETURN(LiveManifests live, LiveManifestRecords());
  auto keep = [&](const ChunkKey& key) { return referenced.count(key) != 0 || pinned(key); };
  auto out = RewritePacks(victims, keep, live);
  if (!out.ok()) return out.status().WithContext("evict");
  result.packs_evicted = victims.size();
  result.chunks_evicted = out->chunks_dropped;
  result.evicted_bytes = out->dropped_bytes;
  result.chunks_kept = out->chunks_kept;
  LB_ASSIGN_OR_RETURN(sizes, PackSizes(options.path));
  result.pack_bytes = Total(sizes);
  return result;
}

Result<EvictResult> ChunkStore::EvictPacks(std::uint64_t target_bytes, const KeepChunkFn& pinned) {
  return impl_->EvictPacks(target_bytes, pinned);
}

Result<std::uint64_t> ChunkStore::PackBytes() {
  LB_ASSIGN_OR_RETURN(auto sizes, PackSizes(impl_->options.path));
  return Total(sizes);
}

}  // namespace lazyblob
