#include "core/cache_filler.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <span>
#include <string>
#include <thread>
#include <utility>

#include "core/aligned_buffer.h"
#include "core/anon_fd_writer.h"
#include "core/log.h"

namespace lazyblob {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// The source's split of one ReadChunk, if it reported one.
void ReportStages(EngineStats* stats, const ChunkReadTimings& t) {
  if (t.total() == std::chrono::nanoseconds::zero()) return;
  stats->StageTime(Stage::kLookup, Seconds(t.lookup));
  stats->StageTime(Stage::kRead, Seconds(t.read));
  stats->StageTime(Stage::kDecompress, Seconds(t.decompress));
  stats->StageTime(Stage::kVerify, Seconds(t.verify));
}

// True when [offset, offset + length) already holds data in the cache file.
bool RangePresent(int fd, std::uint64_t offset, std::uint64_t length) {
  const off_t hole = ::lseek(fd, static_cast<off_t>(offset), SEEK_HOLE);
  return hole >= 0 && static_cast<std::uint64_t>(hole) >= offset + length;
}

std::uint64_t Overlap(std::uint64_t a0, std::uint64_t a1, std::uint64_t b0, std::uint64_t b1) {
  const std::uint64_t lo = std::max(a0, b0), hi = std::min(a1, b1);
  return hi > lo ? hi - lo : 0;
}

}  // namespace

Status CacheFillerOptions::Validate() const {
  if (write_ahead_bytes > (1ull << 30)) return InvalidArgument("write_ahead_bytes above 1 GiB");
  return trace.Validate();
}

// Claimed, loaded chunks that lie back to back, written with one pwritev. Adding a chunk
// that does not follow the last one, or that would pass kGroupBytes, writes the run first.
// A write failure ends the claims as "absent" and records the demanded chunks as failed.
class CacheFiller::Batch {
 public:
  Batch(CacheFiller& filler, const FillRequest& request, std::vector<std::size_t>* failed)
      : filler_(filler), request_(request), file_(*request.file), failed_(failed) {}
  // Writes what is left; during unwinding, too, so that no claim outlives the Batch.
  ~Batch() {
    try {
      Flush();
    } catch (...) {
      // Claims are ended before anything in Flush may throw; the rest is stats and logs.
    }
  }

  void Add(std::size_t i, ChunkCache::Buffer buffer) {
    const std::uint64_t bytes = AlignUp(file_.map().extents[i].length);
    if (!run_.empty() && (run_.back().first + 1 != i || bytes_ + bytes > kGroupBytes)) Flush();
    run_.emplace_back(i, std::move(buffer));
    bytes_ += bytes;
  }

  void Flush() {
    if (run_.empty()) return;
    Run run;
    run.swap(run_);
    bytes_ = 0;
    const BlobMap& map = file_.map();
    const Status st = Write(map, run);
    // Every claim ends before anything else may throw.
    for (const auto& [i, buffer] : run) file_.Finish(i, st.ok());
    for (const auto& [i, buffer] : run) {
      if (!st.ok() && i < request_.demand_end) failed_->push_back(i);
    }
    for (const auto& [i, buffer] : run) {
      if (!st.ok()) break;
      if (request_.replay) {
        if (FileTrace* trace = file_.trace()) trace->Replayed(i);
        filler_.stats_->PrefetchWritten(AlignUp(map.extents[i].length));
      }
      const std::uint64_t at = map.extents[i].blob_offset;
      const std::uint64_t bytes = AlignUp(map.extents[i].length);
      filler_.stats_->BytesWritten(
          bytes, bytes - Overlap(at, at + bytes, request_.asked_begin, request_.asked_end));
    }
    if (!st.ok()) Log(LogLevel::kError, "blob '" + map.id + "': " + st.ToString());
  }

 private:
  using Run = std::vector<std::pair<std::size_t, ChunkCache::Buffer>>;

  Status Write(const BlobMap& map, const Run& run) {
    try {
      pieces_.clear();
      for (const auto& [i, buffer] : run) {
        pieces_.emplace_back(buffer->data(), AlignUp(map.extents[i].length));
      }
      const Clock::time_point start = Clock::now();
      // Whole blocks: the blob's unaligned tail goes out as one zero-padded block.
      Status st = WriteBlocks(request_.fd, map.extents[run.front().first].blob_offset, pieces_);
      filler_.stats_->StageTime(Stage::kWrite, SecondsSince(start));
      return st;
    } catch (const std::exception& e) {
      return Internal(std::string("writing chunks: ") + e.what());
    }
  }

  CacheFiller& filler_;
  const FillRequest& request_;
  CacheFile& file_;
  std::vector<std::size_t>* const failed_;
  Run run_;
  std::vector<std::span<const std::byte>> pieces_;
  std::uint64_t bytes_ = 0;
};

// One fill's groups, which threads take in order from `next`; `done` counts finished
// groups.
struct CacheFiller::GroupJob {
  FillRequest request;
  std::vector<std::pair<std::size_t, std::size_t>> groups;
  std::atomic<std::size_t> next{0};
  Mutex mu;
  CondVar cv;
  std::size_t done LB_GUARDED_BY(mu) = 0;
  std::vector<std::size_t> failed LB_GUARDED_BY(mu);
};

CacheFiller::CacheFiller(const CacheFillerOptions& options, ChunkSource* source, EngineStats* stats,
                         TaskPool* pool)
    : source_(source),
      stats_(stats),
      pool_(pool),
      write_ahead_bytes_(options.write_ahead_bytes),
      write_ahead_async_(options.write_ahead_async),
      trace_(options.trace),
      cache_(options.chunk_cache_bytes) {}

FillResult CacheFiller::FillRange(const std::shared_ptr<CacheFile>& file, int fd,
                                  std::uint64_t offset, std::uint64_t length) {
  return Fill(PlanRange(file, fd, offset, length));
}

FillResult CacheFiller::FillRange(const std::shared_ptr<CacheFile>& file,
                                  std::shared_ptr<const UniqueFd> fd, std::uint64_t offset,
                                  std::uint64_t length) {
  FillRequest request = PlanRange(file, fd->get(), offset, length);
  if (!write_ahead_async_ || request.end == request.demand_end) return Fill(request);
  FillRequest ahead = request;
  ahead.first = request.demand_end;
  request.end = request.demand_end;
  FillResult result = Fill(request);
  if (!stopping() && !file->closed()) {
    pool_->Submit(TaskPriority::kDemand,
                  [this, ahead = std::move(ahead), fd = std::move(fd)] { Fill(ahead); });
  }
  return result;
}

FillRequest CacheFiller::PlanRange(const std::shared_ptr<CacheFile>& file, int fd,
                                   std::uint64_t offset, std::uint64_t length) {
  const BlobMap& map = file->map();
  FillRequest request;
  request.file = file;
  request.fd = fd;
  std::tie(request.first, request.demand_end) = map.Covering(offset, length);
  request.asked_begin = offset;
  request.asked_end = offset + std::min(length, map.size);
  // The window goes out before the requester is answered, so a sequential reader's next
  // requests find it (docs/engine-measurements.md).
  const std::uint64_t base = WriteAheadBase(*file);
  request.end = stopping() || base == 0 ? request.demand_end
                                        : file->NextWindow(request.first, request.demand_end, base,
                                                           base * kWindowGrowth);
  NoteDemand(*file, request.first, request.demand_end, request.end);
  return request;
}

FillResult CacheFiller::Fill(const FillRequest& request) {
  auto job = std::make_shared<GroupJob>();
  job->request = request;
  const std::vector<ChunkExtent>& extents = request.file->map().extents;
  std::uint64_t bytes = 0;
  std::size_t group_begin = request.first;
  for (std::size_t i = request.first; i < request.end; ++i) {
    bytes += extents[i].length;
    if (bytes >= kGroupBytes || i + 1 == request.end) {
      job->groups.emplace_back(group_begin, i + 1);
      group_begin = i + 1;
      bytes = 0;
    }
  }
  if (job->groups.empty()) return {};
  // Helpers take groups this thread has not reached yet. One that runs after every group
  // was taken finds none and ends, so this thread never waits for a queued task: it only
  // waits for groups other threads are writing.
  const std::size_t helpers =
      std::min(job->groups.size() - 1, static_cast<std::size_t>(std::max(0, pool_->threads() - 1)));
  for (std::size_t h = 0; h < helpers; ++h) {
    pool_->Submit(TaskPriority::kDemand, [this, job] { RunGroups(*job); });
  }
  RunGroups(*job);
  MutexLock lock(&job->mu);
  while (job->done != job->groups.size()) job->cv.Wait(&job->mu);
  FillResult result;
  result.failed = std::move(job->failed);
  std::sort(result.failed.begin(), result.failed.end());
  return result;
}

void CacheFiller::RunGroups(GroupJob& job) {
  for (;;) {
    const std::size_t g = job.next.fetch_add(1);
    if (g >= job.groups.size()) return;
    const auto [begin, end] = job.groups[g];
    std::vector<std::size_t> failed;
    try {
      WriteGroup(job.request, begin, end, /*use_cache=*/true, &failed);
    } catch (const std::exception& e) {
      // Claims were ended while unwinding (Batch, Claim); the group still counts as done,
      // so the requester is answered, with its demanded chunks failed.
      Log(LogLevel::kError, "blob '" + job.request.file->map().id +
                                "': filling chunks failed with an exception: " + e.what());
      for (std::size_t i = begin; i < std::min(end, job.request.demand_end); ++i) {
        if (std::find(failed.begin(), failed.end(), i) == failed.end()) failed.push_back(i);
      }
    }
    {
      MutexLock lock(&job.mu);
      job.failed.insert(job.failed.end(), failed.begin(), failed.end());
      ++job.done;
    }
    job.cv.SignalAll();
  }
}

bool CacheFiller::Claim(CacheFile& file, std::size_t i, bool demand, Batch& batch) {
  CacheFile::Claim claim = file.TryClaim(i);
  if (claim == CacheFile::Claim::kBusy && demand) {
    batch.Flush();
    claim = file.ClaimOrWait(i);
  }
  return claim == CacheFile::Claim::kMine;
}

void CacheFiller::WriteGroup(const FillRequest& request, std::size_t begin, std::size_t end,
                             bool use_cache, std::vector<std::size_t>* failed) {
  CacheFile& file = *request.file;
  const BlobMap& map = file.map();
  source_->WillRead(std::span(map.extents).subspan(begin, end - begin));
  Batch batch(*this, request, failed);
  for (std::size_t i = begin; i < end; ++i) {
    const bool demand = i < request.demand_end;
    // A closed file or a stopping filler gets no more work ahead of demand.
    if (!demand && (file.closed() || stopping())) break;
    // Present, or (ahead of demand) another thread's.
    if (!Claim(file, i, demand, batch)) continue;
    const ChunkExtent& extent = map.extents[i];
    // Written by an earlier run of the daemon (the cache file outlives it).
    if (RangePresent(request.fd, extent.blob_offset, extent.length)) {
      file.Finish(i, true);
      continue;
    }
    Result<ChunkCache::Buffer> buffer = Internal("not loaded");
    try {
      buffer = LoadChunk(extent, use_cache);
    } catch (...) {
      file.Finish(i, false);
      throw;
    }
    if (!buffer.ok()) {
      file.Finish(i, false);
      if (demand) failed->push_back(i);
      Log(LogLevel::kError, "blob '" + map.id + "': chunk " + extent.key.ToHex() + " at offset " +
                                std::to_string(extent.blob_offset) + " (" +
                                std::to_string(extent.length) +
                                " bytes) not served: " + buffer.status().ToString());
      continue;
    }
    batch.Add(i, std::move(*buffer));
  }
  batch.Flush();
}

Result<ChunkCache::Buffer> CacheFiller::LoadChunk(const ChunkExtent& extent, bool use_cache) {
  auto loader = [&]() -> Result<ChunkCache::Buffer> {
    auto buffer = std::make_shared<AlignedBuffer>(AlignUp(extent.length));
    ChunkReadTimings timings;
    const Clock::time_point t0 = Clock::now();
    const Status st = source_->ReadChunk(extent, buffer->span(), &timings);
    const double seconds = SecondsSince(t0);
    ReportStages(stats_, timings);
    if (!st.ok()) {
      stats_->ChunkLookup(st.code() == StatusCode::kCorruption ? ChunkLookupResult::kCorrupt
                                                               : ChunkLookupResult::kMissing);
      return st;
    }
    stats_->Decompressed(
        timings.total() > std::chrono::nanoseconds::zero() ? Seconds(timings.decompress) : seconds);
    stats_->ChunkLookup(ChunkLookupResult::kStoreHit);
    return ChunkCache::Buffer(std::move(buffer));
  };
  if (!use_cache) return loader();
  LB_ASSIGN_OR_RETURN(ChunkCache::Lookup lookup, cache_.GetOrLoad(extent.key, loader));
  if (lookup.source != ChunkCache::Source::kLoaded) {
    stats_->ChunkLookup(ChunkLookupResult::kCacheHit);
  }
  return std::move(lookup.buffer);
}

void CacheFiller::StartPrefetch(std::shared_ptr<CacheFile> file,
                                std::shared_ptr<const UniqueFd> fd) {
  if (stopping()) return;
  pool_->Submit(TaskPriority::kBackground,
                [this, file = std::move(file), fd = std::move(fd)] { Prefetch(file, fd->get()); });
}

void CacheFiller::Prefetch(const std::shared_ptr<CacheFile>& file, int fd) {
  const BlobMap& map = file->map();
  FillRequest request;
  request.file = file;
  request.fd = fd;
  std::vector<std::size_t> failed;
  for (std::size_t i = 0; i < map.extents.size(); ++i) {
    if (!WaitForNoDemand(*file)) return;
    // Prefetched chunks bypass the shared cache: a whole blob would evict the hot set.
    WriteGroup(request, i, i + 1, /*use_cache=*/false, &failed);
  }
  Log(LogLevel::kDebug, "prefetched blob '" + map.id + "'");
}

bool CacheFiller::WaitForNoDemand(const CacheFile& file) {
  MutexLock lock(&mu_);
  while ((demand_ > 0 || !file.writable()) && !stopping() && !file.closed()) {
    demand_cv_.Wait(&mu_);
  }
  return !stopping() && !file.closed();
}

void CacheFiller::BeginDemand() {
  MutexLock lock(&mu_);
  ++demand_;
}

void CacheFiller::EndDemand() {
  bool idle;
  {
    MutexLock lock(&mu_);
    idle = --demand_ == 0;
  }
  if (idle) demand_cv_.SignalAll();
}

void CacheFiller::Close(CacheFile& file) {
  FileTrace* trace = file.closed() ? nullptr : file.trace();  // closed twice: counted once
  if (trace != nullptr) {
    if (trace->replaying()) {
      stats_->PrefetchWasted(trace->UnusedReplayBytes());
    } else {
      SaveRecord(file);
    }
  }
  file.MarkClosed();
  { MutexLock lock(&mu_); }  // a prefetcher between its check and its wait sees the flag
  demand_cv_.SignalAll();
}

void CacheFiller::Stop() {
  stopping_.store(true);
  { MutexLock lock(&mu_); }
  demand_cv_.SignalAll();
}

}  // namespace lazyblob
