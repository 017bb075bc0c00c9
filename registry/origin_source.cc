#include "registry/origin_source.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "core/aligned_buffer.h"
#include "core/log.h"

namespace lazyblob {

OriginResult OriginResultOf(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return OriginResult::kOk;
    case StatusCode::kNotFound:
      return OriginResult::kNotFound;
    case StatusCode::kPermissionDenied:
      return OriginResult::kDenied;
    case StatusCode::kCorruption:
      return OriginResult::kCorrupt;
    case StatusCode::kMalformed:
      return OriginResult::kMalformed;
    default:
      return OriginResult::kError;
  }
}

// One chunk being fetched: the leader completes it once; joiners wait for that.
struct OriginSource::Flight {
  Mutex mu;
  CondVar cv;
  bool done LB_GUARDED_BY(mu) = false;
  Status status LB_GUARDED_BY(mu);
  std::shared_ptr<const std::vector<std::byte>> raw LB_GUARDED_BY(mu);

  // false when it was already complete.
  bool Complete(Status s, std::shared_ptr<const std::vector<std::byte>> bytes) {
    {
      MutexLock lock(&mu);
      if (done) return false;
      done = true;
      status = std::move(s);
      raw = std::move(bytes);
    }
    cv.SignalAll();
    return true;
  }
  // Waits for the leader; whether the wait was needed.
  bool Wait() {
    MutexLock lock(&mu);
    const bool waited = !done;
    while (!done) cv.Wait(&mu);
    return waited;
  }
};

namespace {

using Clock = std::chrono::steady_clock;

// The run of chunks a thread said it reads next (ChunkSource::WillRead), and for whom.
struct Hint {
  const void* owner = nullptr;
  std::vector<ChunkExtent> extents;
};
thread_local Hint t_hint;

}  // namespace

Status OriginSourceOptions::Validate() const {
  LB_RETURN_IF_ERROR(coalesce.Validate());
  if (maps_dir.empty()) return InvalidArgument("origin: no directory for kept maps");
  if (ahead_requests < 1 || ahead_requests > 64) {
    return InvalidArgument("origin: ahead_requests outside [1, 64]");
  }
  return Status::Ok();
}

Result<std::unique_ptr<OriginSource>> OriginSource::Open(const OriginSourceOptions& options,
                                                         ChunkStore* local, RegistryClient* client,
                                                         OriginCache* cache, OriginStats* stats) {
  LB_RETURN_IF_ERROR(options.Validate());
  LB_ASSIGN_OR_RETURN(KeptMaps maps, KeptMaps::Open(options.maps_dir));
  return std::unique_ptr<OriginSource>(
      new OriginSource(options, std::move(maps), local, client, cache, stats));
}

OriginSource::OriginSource(const OriginSourceOptions& options, KeptMaps maps, ChunkStore* local,
                           RegistryClient* client, OriginCache* cache, OriginStats* stats)
    : options_(options),
      maps_(std::move(maps)),
      local_(local),
      fetcher_(client),
      cache_(cache),
      stats_(stats) {}

OriginSource::~OriginSource() {
  std::vector<std::thread> ahead;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    ahead.swap(ahead_threads_);
  }
  ahead_cv_.SignalAll();
  for (std::thread& t : ahead) t.join();
  // Commits still queued call back into this source (Land).
  cache_->Flush();
}

Result<OpenedBlob> OriginSource::OpenBlob(std::string_view blob_id) {
  if (local_ != nullptr) {
    auto blob = local_->OpenBlob(blob_id);
    if (blob.ok() || blob.status().code() != StatusCode::kNotFound) return blob;
  }
  LB_ASSIGN_OR_RETURN(std::shared_ptr<const RemoteEntry> entry, Resolve(blob_id));
  return OpenedBlob{entry->map, nullptr};
}

Result<std::shared_ptr<const OriginSource::RemoteEntry>> OriginSource::Resolve(
    std::string_view blob_id) {
  {
    MutexLock lock(&mu_);
    if (auto it = blobs_.find(std::string(blob_id)); it != blobs_.end()) return it->second;
  }
  auto entry = std::make_shared<RemoteEntry>();
  auto kept = maps_.Load(blob_id);
  if (kept.ok() && kept->has_value()) {
    auto remote = std::make_shared<RemoteBlob>();
    remote->map = std::move(**kept);
    entry->remote = std::move(remote);
    stats_->Resolved(OriginResult::kOk, /*kept=*/true);
  } else {
    if (!kept.ok())
      Log(LogLevel::kWarn, "origin: " + kept.status().ToString() + "; resolving again");
    auto remote = fetcher_.Resolve(blob_id);
    stats_->Resolved(OriginResultOf(remote.status()), /*kept=*/false);
    if (!remote.ok()) {
      Log(LogLevel::kError, "origin: OPEN of blob '" + std::string(blob_id) +
                                "' failed: " + remote.status().ToString());
      return remote.status();
    }
    entry->remote = std::move(*remote);
    if (Status s = maps_.Save(entry->remote->map); !s.ok()) {
      Log(LogLevel::kWarn, "origin: map of blob '" + std::string(blob_id) +
                               "' not kept (a restart resolves it again): " + s.ToString());
    }
  }
  entry->map = entry->remote->map.ToBlobMap();
  Register(entry);
  return std::shared_ptr<const RemoteEntry>(std::move(entry));
}

void OriginSource::Register(const std::shared_ptr<const RemoteEntry>& entry) {
  MutexLock lock(&mu_);
  blobs_.emplace(entry->remote->map.info.id, entry);
  // The blob opened last is the likeliest to be read next: its places win (any place of a
  // key holds the same bytes).
  const auto& chunks = entry->remote->map.chunks;
  for (std::size_t i = 0; i < chunks.size(); ++i) locations_[chunks[i].key] = Location{entry, i};
}

void OriginSource::WillRead(std::span<const ChunkExtent> extents) {
  t_hint.owner = this;
  t_hint.extents.assign(extents.begin(), extents.end());
}

bool OriginSource::HeldLocally(const ChunkKey& key) {
  if (local_ != nullptr) {
    auto has = local_->HasChunk(key);
    if (has.ok() && *has) return true;
  }
  return cache_->Has(key);
}

Status OriginSource::ReadChunk(const ChunkExtent& extent, std::span<std::byte> out,
                               ChunkReadTimings* timings) {
  if (local_ != nullptr) {
    auto has = local_->HasChunk(extent.key);
    if (has.ok() && *has) {
      stats_->ChunkRead(OriginChunkFrom::kLocal);
      return local_->ReadChunk(extent, out, timings);
    }
  }
  for (;;) {
    std::uint64_t generation;
    {
      MutexLock lock(&mu_);
      generation = committed_generation_;
    }
    Status s = cache_->ReadChunk(extent, out, timings);
    if (s.ok()) stats_->ChunkRead(OriginChunkFrom::kCache);
    if (s.code() != StatusCode::kNotFound) return s;
    ChunkReadStopwatch watch(timings);
    LB_ASSIGN_OR_RETURN(bool fetched, FetchOrJoin(extent, out, generation));
    watch.Lap(&ChunkReadTimings::read);
    if (fetched) {
      stats_->ChunkRead(OriginChunkFrom::kOrigin);
      return Status::Ok();
    }
  }
}

Result<bool> OriginSource::FetchOrJoin(const ChunkExtent& extent, std::span<std::byte> out,
                                       std::uint64_t generation) {
  std::shared_ptr<Flight> flight;
  Location at;
  {
    MutexLock lock(&mu_);
    if (auto it = flights_.find(extent.key); it != flights_.end()) {
      flight = it->second;
    } else if (committed_generation_ != generation) {
      return false;
    } else if (auto loc = locations_.find(extent.key); loc != locations_.end()) {
      at = loc->second;
    } else {
      return NotFound("chunk " + extent.key.ToHex() +
                      " is in no blob resolved through the registry");
    }
  }
  bool leader = false;
  if (flight == nullptr) {
    std::vector<std::size_t> run = Run(at, extent);  // index lookups: outside the lock
    Flights mine;
    std::vector<std::size_t> owned;
    {
      MutexLock lock(&mu_);
      if (auto it = flights_.find(extent.key); it != flights_.end()) {
        flight = it->second;
      } else if (committed_generation_ != generation) {
        return false;
      } else {
        TakeFlights(at.blob->remote->map, run, &mine, &owned);
        flight = mine.at(extent.key);
        leader = true;
      }
    }
    if (leader) Lead(*at.blob, owned, mine);
  }
  if (flight->Wait() && !leader) stats_->SingleFlightJoin();
  LB_RETURN_IF_ERROR(CopyOut(*flight, extent, out));
  return true;
}

void OriginSource::TakeFlights(const RemoteBlobMap& map, const std::vector<std::size_t>& chunks,
                               Flights* mine, std::vector<std::size_t>* owned) {
  for (std::size_t i : chunks) {
    auto [it, fresh] = flights_.try_emplace(map.chunks[i].key);
    if (!fresh) continue;  // someone else's flight (or a repeated key)
    it->second = std::make_shared<Flight>();
    mine->emplace(map.chunks[i].key, it->second);
    owned->push_back(i);
  }
}

std::vector<std::size_t> OriginSource::Run(const Location& at, const ChunkExtent& extent) {
  const RemoteBlobMap& map = at.blob->remote->map;
  std::vector<std::size_t> run = {at.index};
  if (t_hint.owner != this) return run;
  const std::vector<ChunkExtent>& hint = t_hint.extents;
  auto pos = std::find_if(hint.begin(), hint.end(), [&](const ChunkExtent& e) {
    return e.blob_offset == extent.blob_offset && e.key == extent.key;
  });
  if (pos == hint.end()) return run;
  const std::vector<ChunkExtent>& extents = at.blob->map->extents;
  const std::size_t demanded = at.index;
  // The hint's extents are of the blob being read; they match `at.blob` when it is that
  // blob (the usual case), and the run stops at the first that does not.
  if (demanded >= extents.size() || extents[demanded].blob_offset != extent.blob_offset) {
    return run;
  }
  std::uint64_t bytes = map.chunks[demanded].stored_len;
  std::size_t next = demanded + 1;
  for (++pos; pos != hint.end(); ++pos, ++next) {
    if (next >= extents.size() || extents[next].blob_offset != pos->blob_offset ||
        extents[next].key != pos->key) {
      break;
    }
    bytes += map.chunks[next].stored_len;
    if (bytes > options_.coalesce.max_request_bytes) break;
    if (!HeldLocally(pos->key)) run.push_back(next);
  }
  return run;
}

void OriginSource::Lead(const RemoteEntry& blob, const std::vector<std::size_t>& owned,
                        const Flights& flights) {
  const RemoteBlobMap& map = blob.remote->map;
  for (const RangeRequest& request : BlobFetcher::Plan(map, owned, options_.coalesce)) {
    std::unordered_map<std::size_t, std::shared_ptr<const std::vector<std::byte>>> got;
    std::unordered_map<std::size_t, Status> refused;
    std::vector<StoredChunk> keep;
    FetchStats fs;
    const Clock::time_point t0 = Clock::now();
    Status st = fetcher_.Fetch(
        *blob.remote, request,
        [&](std::size_t i, StoredChunk chunk, std::span<const std::byte> raw) {
          got[i] = std::make_shared<const std::vector<std::byte>>(raw.begin(), raw.end());
          keep.push_back(std::move(chunk));
          return Status::Ok();
        },
        &fs,
        [&](std::size_t i, const Status& why) {
          refused[i] = why;
          stats_->ChunkRejected();
          Log(LogLevel::kError, "origin: " + why.ToString());
        });
    stats_->RangeRequest(OriginResultOf(st),
                         std::chrono::duration<double>(Clock::now() - t0).count(), fs.bytes,
                         request.chunks.size(), fs.range_ignored > 0);
    stats_->ChunksFetched(keep.size());
    if (!st.ok() && refused.empty()) {
      Log(LogLevel::kError, "origin: fetching " + std::to_string(request.chunks.size()) +
                                " chunks of blob '" + map.info.id + "' failed: " + st.ToString());
    }
    std::vector<std::pair<ChunkKey, std::shared_ptr<Flight>>> landed, failed;
    for (std::size_t i : request.chunks) {
      const ChunkKey& key = map.chunks[i].key;
      const std::shared_ptr<Flight>& flight = flights.at(key);
      if (auto it = got.find(i); it != got.end()) {
        flight->Complete(Status::Ok(), it->second);
        landed.emplace_back(key, flight);
      } else {
        auto r = refused.find(i);
        flight->Complete(r != refused.end() ? r->second
                         : st.ok()          ? Internal("chunk missing from its request")
                                            : st,
                         nullptr);
        failed.emplace_back(key, flight);
      }
    }
    Land(failed, /*committed=*/false);
    if (!landed.empty()) {
      cache_->Persist(std::move(keep), [this, landed = std::move(landed)](const Status& s) {
        Land(landed, s.ok());
      });
    }
  }
  // A flight Plan left out must not leave a reader waiting.
  std::vector<std::pair<ChunkKey, std::shared_ptr<Flight>>> left;
  for (const auto& [key, flight] : flights) {
    if (flight->Complete(Internal("chunk was not fetched"), nullptr))
      left.emplace_back(key, flight);
  }
  Land(left, /*committed=*/false);
}

void OriginSource::Land(const std::vector<std::pair<ChunkKey, std::shared_ptr<Flight>>>& flights,
                        bool committed) {
  if (flights.empty()) return;
  MutexLock lock(&mu_);
  for (const auto& [key, flight] : flights) {
    auto it = flights_.find(key);
    if (it != flights_.end() && it->second == flight) flights_.erase(it);
  }
  if (committed) ++committed_generation_;
}

Status OriginSource::CopyOut(Flight& f, const ChunkExtent& extent, std::span<std::byte> out) {
  MutexLock lock(&f.mu);
  if (!f.status.ok()) return f.status;
  const std::vector<std::byte>& raw = *f.raw;
  if (raw.size() != extent.length || out.size() < AlignUp(extent.length)) {
    return Corruption("chunk " + extent.key.ToHex() + " has length " + std::to_string(raw.size()) +
                      ", the blob map says " + std::to_string(extent.length));
  }
  std::memcpy(out.data(), raw.data(), raw.size());
  std::memset(out.data() + raw.size(), 0, AlignUp(extent.length) - raw.size());
  return Status::Ok();
}

}  // namespace lazyblob
