#include "registry/puller.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <unordered_map>

#include "core/mutex.h"
#include "registry/registry_ref.h"

namespace lazyblob {

Status PullOptions::Validate() const {
  LB_RETURN_IF_ERROR(coalesce.Validate());
  if (parallel_requests < 1 || parallel_requests > 64) {
    return InvalidArgument("parallel_requests must be 1..64");
  }
  return Status::Ok();
}

namespace {

// Runs `plan` on up to `threads` threads; the first failure stops the others.
Status RunPlan(const BlobFetcher& fetcher, const RemoteBlob& blob,
               const std::vector<RangeRequest>& plan, int threads, const FetchedChunkFn& on_chunk,
               FetchStats* total) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  Mutex mu;
  Status first;  // guarded by mu
  auto work = [&] {
    FetchStats mine;
    while (!stop.load()) {
      const std::size_t i = next.fetch_add(1);
      if (i >= plan.size()) break;
      Status s = fetcher.Fetch(blob, plan[i], on_chunk, &mine);
      if (!s.ok()) {
        MutexLock lock(&mu);
        if (first.ok()) first = s;
        stop = true;
      }
    }
    MutexLock lock(&mu);
    total->requests += mine.requests;
    total->bytes += mine.bytes;
    total->chunks += mine.chunks;
    total->range_ignored += mine.range_ignored;
  };
  const int n = std::max(1, std::min<int>(threads, static_cast<int>(plan.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  return first;
}

}  // namespace

Result<PullResult> PullBlob(RegistryClient& client, ChunkStore& store, std::string_view id,
                            const PullOptions& options, const PullProgress& progress) {
  LB_RETURN_IF_ERROR(options.Validate());
  BlobFetcher fetcher(&client);
  LB_ASSIGN_OR_RETURN(auto blob, fetcher.Resolve(id));
  const RemoteBlobMap& m = blob->map;
  PullResult result;
  result.id = m.info.id;
  result.manifest_digest = blob->manifest_digest;
  result.size = m.info.size;
  result.chunks = m.chunks.size();
  std::unordered_map<ChunkKey, std::size_t, ChunkKeyHash> first_index;
  for (std::size_t i = 0; i < m.chunks.size(); ++i) first_index.try_emplace(m.chunks[i].key, i);

  FetchStats stats;
  auto supply = [&](const std::vector<ChunkExtent>& missing, const ChunkSink& sink) -> Status {
    std::vector<std::size_t> wanted;
    std::uint64_t total = 0;
    for (const ChunkExtent& e : missing) {
      wanted.push_back(first_index.at(e.key));
      total += e.length;
    }
    const std::vector<RangeRequest> plan = BlobFetcher::Plan(m, wanted, options.coalesce);
    Mutex progress_mu;
    std::uint64_t done = 0;
    auto on_chunk = [&](std::size_t, StoredChunk c, std::span<const std::byte>) -> Status {
      const std::uint32_t len = c.raw_len;
      LB_RETURN_IF_ERROR(sink(std::move(c)));
      MutexLock lock(&progress_mu);
      done += len;
      if (progress) progress(done, total);
      return Status::Ok();
    };
    return RunPlan(fetcher, *blob, plan, options.parallel_requests, on_chunk, &stats);
  };
  BlobInfo info = m.info;
  LB_ASSIGN_OR_RETURN(ImportResult imported, store.ImportChunkedBlob(info, m.Extents(), supply));
  result.already_present = imported.already_present;
  result.fetched_chunks = stats.chunks;
  result.fetched_bytes = stats.bytes;
  result.requests = stats.requests;
  result.range_ignored = stats.range_ignored;
  result.stored_bytes = imported.new_stored_bytes;
  return result;
}

Result<std::vector<RemoteBlobSummary>> ListRemoteBlobs(RegistryClient& client,
                                                       std::uint64_t* skipped) {
  LB_ASSIGN_OR_RETURN(std::vector<std::string> tags, client.ListTags());
  std::vector<RemoteBlobSummary> out;
  for (const std::string& tag : tags) {
    if (!IsBlobTag(tag)) continue;
    LB_ASSIGN_OR_RETURN(FetchedManifest fetched, client.GetManifest(tag));
    auto m = DecodeArtifactManifest(fetched.bytes);
    if (!m.ok() || TagForBlobId(m->blob_id) != tag) {
      if (skipped != nullptr) ++*skipped;
      continue;
    }
    out.push_back(RemoteBlobSummary{m->blob_id, tag, fetched.digest, m->blob_size, m->chunk_count,
                                    m->blob_sha256, m->created});
  }
  std::sort(out.begin(), out.end(),
            [](const RemoteBlobSummary& a, const RemoteBlobSummary& b) { return a.id < b.id; });
  return out;
}

}  // namespace lazyblob
