// OriginSource: the ChunkSource lazyblobd serves from when it has a registry origin
// (`--origin`). A chunk is read from, in order:
//  1. the node's own store (`local`, may be absent): imported or pulled blobs;
//  2. the origin cache (OriginCache): chunks fetched before, by this daemon or an earlier one;
//  3. the registry: compressed chunk bytes by HTTP Range GETs (BlobFetcher), each chunk
//     verified (XXH3-128 and SHA-256) before a byte of it is returned, then queued for the
//     origin cache.
//
// OpenBlob looks in the local store first; an id it lacks is resolved through the registry
// (manifest + chunk map, BlobFetcher::Resolve) and its map kept on disk (KeptMaps), so a
// restarted daemon serves it without the registry.
//
// Fetching:
//  - single flight: each chunk is fetched by one reader at a time; others reading it (any
//    blob, any object) wait for that fetch and share its verified bytes. A fetch stays
//    joinable until its chunks are committed to the origin cache, so no chunk is fetched
//    twice by one daemon (unless it is evicted meanwhile).
//  - coalescing: a reader that has to fetch takes along the chunks its WillRead hint says it
//    reads next (those not held locally nor in flight), as far as they sit together in the
//    blob, up to CoalesceOptions::max_request_bytes; BlobFetcher::Plan turns them into
//    Range GETs (neighbours in one bundle share a request).
//  - fetching ahead (FetchAhead, trace replay's hint): the hinted chunks are fetched in
//    hint order by up to OriginSourceOptions::ahead_requests threads of the source's own,
//    one Range GET each at a time (neighbours coalesced as above), paced to the hint's
//    bandwidth. They take flights like any fetch, so a demand read of a chunk fetched
//    ahead joins that fetch; demand never queues behind them (a reader that has to fetch
//    sends its own request at once). Dropping the hold cancels what has not started.
//  - a chunk that fails verification is refused alone (the others of its request are
//    kept), counted, and never returned nor stored; the read of it fails (EIO upstream).
//  - failures are not remembered: the next read tries the registry again, so a registry
//    that comes back is used at once. How long a read may wait on an unanswering registry
//    is bounded by the client's timeouts and retries (HttpClientOptions).
//
// Thread-safety: thread-safe. `local`, `client`, `cache` and `stats` are borrowed and must
// outlive the source (the cache's writer calls back into the source until it is destroyed).
#ifndef LAZYBLOB_REGISTRY_ORIGIN_SOURCE_H_
#define LAZYBLOB_REGISTRY_ORIGIN_SOURCE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/chunk_source.h"
#include "core/mutex.h"
#include "core/status.h"
#include "registry/blob_fetcher.h"
#include "registry/kept_maps.h"
#include "registry/origin_cache.h"
#include "registry/origin_stats.h"
#include "store/chunk_store.h"

namespace lazyblob {

struct OriginSourceOptions {
  // Range GETs carry at most max_request_bytes (default 4 MiB); chunks of a bundle at most
  // max_gap_bytes apart share one (default 64 KiB; the gap is downloaded and dropped).
  CoalesceOptions coalesce;
  std::string maps_dir;  // where resolved maps are kept (KeptMaps); required
  // Range GETs that fetching ahead (FetchAhead) keeps in flight at once, on threads started
  // at the first FetchAhead. Default 16 (at 20 ms, 4 left replay 0.2 s behind:
  // bench/results/origin.md); 1..64.
  int ahead_requests = 16;

  Status Validate() const;
};

class OriginSource final : public ChunkSource {
 public:
  // `local` may be null (a node with no store of its own).
  static Result<std::unique_ptr<OriginSource>> Open(const OriginSourceOptions& options,
                                                    ChunkStore* local, RegistryClient* client,
                                                    OriginCache* cache, OriginStats* stats);
  ~OriginSource() override;  // waits for the cache to commit what this source queued
  OriginSource(const OriginSource&) = delete;
  OriginSource& operator=(const OriginSource&) = delete;

  // ChunkSource. OpenBlob: the local store's blob (with its lease), else the kept or
  // resolved remote one (no hold). kNotFound when neither has the id; other registry
  // failures keep their code (kPermissionDenied, kMalformed, kCorruption, kIoError).
  Result<OpenedBlob> OpenBlob(std::string_view blob_id) override;
  using ChunkSource::ReadChunk;
  Status ReadChunk(const ChunkExtent& extent, std::span<std::byte> out,
                   ChunkReadTimings* timings) override;
  void WillRead(std::span<const ChunkExtent> extents) override;
  std::shared_ptr<void> FetchAhead(std::span<const ChunkExtent> extents,
                                   std::uint64_t bytes_per_second) override LB_EXCLUDES(mu_);

 private:
  struct Flight;
  struct AheadJob;
  struct AheadSlice;
  // A blob resolved through the registry, with its chunk offsets for the hint lookup.
  struct RemoteEntry {
    std::shared_ptr<const RemoteBlob> remote;
    std::shared_ptr<const BlobMap> map;  // what OpenBlob hands out
  };
  struct Location {
    std::shared_ptr<const RemoteEntry> blob;
    std::size_t index = 0;  // into blob->remote->map.chunks
  };
  using Flights = std::unordered_map<ChunkKey, std::shared_ptr<Flight>, ChunkKeyHash>;

  OriginSource(const OriginSourceOptions& options, KeptMaps maps, ChunkStore* local,
               RegistryClient* client, OriginCache* cache, OriginStats* stats);

  Result<std::shared_ptr<const RemoteEntry>> Resolve(std::string_view blob_id) LB_EXCLUDES(mu_);
  void Register(const std::shared_ptr<const RemoteEntry>& entry) LB_EXCLUDES(mu_);
  // Fetches `extent` (leading a fetch or joining one) into `out`. false: the chunk was
  // committed to the cache since `generation`: read it from there.
  Result<bool> FetchOrJoin(const ChunkExtent& extent, std::span<std::byte> out,
                           std::uint64_t generation) LB_EXCLUDES(mu_);
  // Starts a flight for each of `chunks` (indexes into map.chunks) nobody fetches yet: ours
  // go to `mine` and `owned`.
  void TakeFlights(const RemoteBlobMap& map, const std::vector<std::size_t>& chunks, Flights* mine,
                   std::vector<std::size_t>* owned) LB_REQUIRES(mu_);
  // The chunks to fetch with the one at `at`: it, then those the thread's hint reads next.
  std::vector<std::size_t> Run(const Location& at, const ChunkExtent& extent);
  bool HeldLocally(const ChunkKey& key);
  // Fetches `owned` (our flights) from `blob`, completes the flights, queues the chunks
  // for the cache.
  void Lead(const RemoteEntry& blob, const std::vector<std::size_t>& owned, const Flights& flights);
  // Ends our flights for `keys` (after their chunks were committed, or failed).
  void Land(const std::vector<std::pair<ChunkKey, std::shared_ptr<Flight>>>& flights,
            bool committed) LB_EXCLUDES(mu_);
  static Status CopyOut(Flight& flight, const ChunkExtent& extent, std::span<std::byte> out);
  // Fetching ahead (registry/origin_fetch_ahead.cc): one thread's loop, and the next
  // request's worth of chunks of the oldest live job.
  void AheadLoop() LB_EXCLUDES(mu_);
  std::optional<AheadSlice> TakeAheadSlice() LB_REQUIRES(mu_);
  // Takes flights for `slice`'s chunks that nobody fetches or holds, and fetches them.
  void FetchSlice(const AheadSlice& slice) LB_EXCLUDES(mu_);

  const OriginSourceOptions options_;
  const KeptMaps maps_;
  ChunkStore* const local_;
  BlobFetcher fetcher_;
  OriginCache* const cache_;
  OriginStats* const stats_;

  Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const RemoteEntry>> blobs_ LB_GUARDED_BY(mu_);
  std::unordered_map<ChunkKey, Location, ChunkKeyHash> locations_ LB_GUARDED_BY(mu_);
  Flights flights_ LB_GUARDED_BY(mu_);
  // Counts commits of fetched chunks to the cache (under mu_, as their flights end).
  std::uint64_t committed_generation_ LB_GUARDED_BY(mu_) = 0;

  // Fetching ahead: jobs in the order they came (held by their callers), the threads that
  // work them, and what wakes those.
  std::deque<std::weak_ptr<AheadJob>> ahead_jobs_ LB_GUARDED_BY(mu_);
  std::vector<std::thread> ahead_threads_ LB_GUARDED_BY(mu_);
  CondVar ahead_cv_;
  bool stopping_ LB_GUARDED_BY(mu_) = false;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_ORIGIN_SOURCE_H_
