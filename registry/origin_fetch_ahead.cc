// OriginSource's fetching ahead (registry/origin_source.h, "Fetching"): trace replay hints
// the chunks a start will read, in order, and a few threads of the source's own fetch them
// before the reads come. Split from origin_source.cc, which reads and fetches on demand;
// both are one class.
#include <algorithm>
#include <chrono>
#include <utility>

#include "registry/origin_source.h"

namespace lazyblob {

using Clock = std::chrono::steady_clock;

// One FetchAhead call: its chunks in hint order. The caller holds it; the queue only
// watches it, so dropping the hold cancels what is left.
struct OriginSource::AheadJob {
  std::vector<Location> chunks;
  std::uint64_t bytes_per_second = 0;
  Clock::time_point start;
  std::size_t next = 0;           // guarded by the source's mu_
  std::uint64_t taken_bytes = 0;  // stored bytes handed to threads (guarded by mu_)
};

// What one thread fetches next: chunks of one blob close enough for one Range GET, not to
// be started before `due` (the job's bandwidth).
struct OriginSource::AheadSlice {
  std::weak_ptr<AheadJob> job;
  std::shared_ptr<const RemoteEntry> blob;
  std::vector<std::size_t> chunks;  // indexes into blob->remote->map.chunks
  Clock::time_point due;
};

std::shared_ptr<void> OriginSource::FetchAhead(std::span<const ChunkExtent> extents,
                                               std::uint64_t bytes_per_second) {
  auto job = std::make_shared<AheadJob>();
  job->bytes_per_second = bytes_per_second;
  job->start = Clock::now();
  MutexLock lock(&mu_);
  if (stopping_) return nullptr;
  job->chunks.reserve(extents.size());
  for (const ChunkExtent& e : extents) {
    // Chunks of blobs not resolved through the registry are the local store's.
    if (auto it = locations_.find(e.key); it != locations_.end()) job->chunks.push_back(it->second);
  }
  if (job->chunks.empty()) return nullptr;
  ahead_jobs_.push_back(job);
  while (ahead_threads_.size() < static_cast<std::size_t>(options_.ahead_requests)) {
    ahead_threads_.emplace_back([this] { AheadLoop(); });
  }
  ahead_cv_.SignalAll();
  return job;
}

void OriginSource::AheadLoop() {
  for (;;) {
    std::optional<AheadSlice> slice;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && !(slice = TakeAheadSlice())) ahead_cv_.Wait(&mu_);
      if (stopping_) return;
      // Paced: wait for the slice's turn, unless the source stops or the job is dropped.
      while (!stopping_ && !slice->job.expired() && Clock::now() < slice->due) {
        ahead_cv_.WaitUntil(&mu_,
                            std::min(slice->due, Clock::now() + std::chrono::milliseconds(50)));
      }
      if (stopping_) return;
    }
    if (!slice->job.expired()) FetchSlice(*slice);
  }
}

std::optional<OriginSource::AheadSlice> OriginSource::TakeAheadSlice() {
  while (!ahead_jobs_.empty()) {
    std::shared_ptr<AheadJob> job = ahead_jobs_.front().lock();
    if (job == nullptr || job->next >= job->chunks.size()) {
      ahead_jobs_.pop_front();  // dropped, or every chunk handed out
      continue;
    }
    AheadSlice slice;
    slice.job = job;
    slice.blob = job->chunks[job->next].blob;
    const RemoteBlobMap& map = slice.blob->remote->map;
    const RemoteChunk& first = map.chunks[job->chunks[job->next].index];
    std::uint64_t lo = first.offset, hi = first.offset + first.stored_len;
    // Following chunks of the hint join while they sit in the same bundle within the
    // coalescing gap of what is taken, and the request stays within its size bound.
    while (job->next < job->chunks.size()) {
      const Location& at = job->chunks[job->next];
      const RemoteChunk& c = map.chunks[at.index];
      const std::uint64_t new_lo = std::min(lo, c.offset);
      const std::uint64_t new_hi = std::max(hi, c.offset + c.stored_len);
      const bool fits = at.blob == slice.blob && c.bundle == first.bundle &&
                        c.offset + c.stored_len + options_.coalesce.max_gap_bytes >= lo &&
                        c.offset <= hi + options_.coalesce.max_gap_bytes &&
                        new_hi - new_lo <= options_.coalesce.max_request_bytes;
      if (!slice.chunks.empty() && !fits) break;
      lo = new_lo;
      hi = new_hi;
      ++job->next;
      if (!flights_.contains(c.key)) slice.chunks.push_back(at.index);
    }
    if (slice.chunks.empty()) continue;  // all being fetched already
    const std::uint64_t bytes = hi - lo;
    slice.due = job->start;
    if (job->bytes_per_second > 0) {
      slice.due += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
          static_cast<double>(job->taken_bytes) / static_cast<double>(job->bytes_per_second)));
    }
    job->taken_bytes += bytes;
    return slice;
  }
  return std::nullopt;
}

void OriginSource::FetchSlice(const AheadSlice& slice) {
  const auto& chunks = slice.blob->remote->map.chunks;
  std::vector<std::size_t> wanted;
  for (std::size_t i : slice.chunks) {
    if (!HeldLocally(chunks[i].key)) wanted.push_back(i);  // index lookups: outside the lock
  }
  Flights mine;
  std::vector<std::size_t> owned;
  {
    MutexLock lock(&mu_);
    TakeFlights(slice.blob->remote->map, wanted, &mine, &owned);
  }
  if (owned.empty()) return;
  stats_->FetchedAhead(owned.size());
  Lead(*slice.blob, owned, mine);
}

}  // namespace lazyblob
