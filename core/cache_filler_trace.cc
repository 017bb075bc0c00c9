// CacheFiller's access traces (core/cache_filler.h, "Access traces"): recording which chunks a
// blob's first seconds read, and replaying a record ahead of demand at background
// priority. Split from cache_filler.cc, which fills ranges; both are one class.
#include "core/cache_filler.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <utility>

#include "core/log.h"

namespace lazyblob {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

Status TraceOptions::Validate() const {
  if (record_window < std::chrono::milliseconds(0) || record_window > std::chrono::hours(1)) {
    return InvalidArgument("trace record window outside [0, 1 hour]");
  }
  if (record_write_ahead_bytes > (1ull << 30)) {
    return InvalidArgument("record_write_ahead_bytes above 1 GiB");
  }
  if (replay_stop_after_off_record < 0) {
    return InvalidArgument("replay_stop_after_off_record is negative");
  }
  return Status();
}

bool CacheFiller::TracesWanted() const {
  return trace_.store != nullptr && (trace_.replay || trace_.record_window.count() > 0);
}

std::future<std::shared_ptr<Result<AccessTrace>>> CacheFiller::LoadRecordAhead(
    const std::string& blob_id) {
  if (!TracesWanted()) return {};
  return std::async(std::launch::async, [store = trace_.store, blob_id] {
    // Behind a pointer: g++ 12 warned (-Wfree-nonheap-object) on the
    // variant's destructor inlined through the future.
    return std::make_shared<Result<AccessTrace>>(store->Load(blob_id));
  });
}

bool CacheFiller::AttachTrace(CacheFile& file) {
  if (!TracesWanted()) return false;
  return AttachRecord(file, trace_.store->Load(file.map().id));  // on this thread
}

bool CacheFiller::AttachTrace(CacheFile& file,
                              std::future<std::shared_ptr<Result<AccessTrace>>> loading) {
  if (!loading.valid()) return false;  // no store, or neither recording nor replay
  return AttachRecord(file, *loading.get());
}

bool CacheFiller::AttachRecord(CacheFile& file, const Result<AccessTrace>& record) {
  const BlobMap& map = file.map();
  if (!record.ok() && record.status().code() != StatusCode::kNotFound) {
    Log(LogLevel::kWarn,
        "blob '" + map.id + "': access record not used: " + record.status().ToString());
  }
  if (record.ok()) {
    // A blob that has a record is not recorded again: under replay the demands no longer
    // show what a start reads.
    if (!trace_.replay) return false;
    std::vector<std::size_t> order = record->ChunksOf(map);
    if (order.empty()) return false;
    file.set_trace(FileTrace::Replaying(file.shared_map(), std::move(order)));
    return true;
  }
  if (trace_.record_window.count() > 0 && record.status().code() == StatusCode::kNotFound) {
    file.set_trace(FileTrace::Recording(file.shared_map(), Clock::now(), trace_.record_window));
  }
  return false;
}

void CacheFiller::NoteDemand(CacheFile& file, std::size_t first, std::size_t demand_end,
                             std::size_t end) {
  FileTrace* trace = file.trace();
  if (trace == nullptr) return;
  const FileTrace::Demand d = trace->NoteDemand(first, demand_end, end, Clock::now());
  if (d.prefetch_hit) stats_->PrefetchHit();
  if (d.record_due) SaveRecord(file);
}

std::uint64_t CacheFiller::WriteAheadBase(const CacheFile& file) const {
  const std::uint64_t base = write_ahead_bytes_.load();
  const FileTrace* trace = file.trace();
  if (trace == nullptr) return base;
  if (trace->replaying()) return trace->replay_running() ? 0 : base;
  if (trace->Recording(Clock::now())) return std::min(base, trace_.record_write_ahead_bytes);
  return base;
}

void CacheFiller::SaveRecord(CacheFile& file) {
  FileTrace* trace = file.trace();
  if (trace == nullptr || trace_.store == nullptr) return;
  std::optional<AccessTrace> record = trace->TakeRecord();
  if (!record) return;
  const Status st = trace_.store->Save(file.map().id, *record);
  if (!st.ok()) {
    Log(LogLevel::kWarn, "blob '" + file.map().id + "': access record not saved: " + st.ToString());
    return;
  }
  stats_->TraceRecorded();
  Log(LogLevel::kInfo, "blob '" + file.map().id + "': recorded " +
                           std::to_string(record->blocks.size()) + " chunks read at start");
}

void CacheFiller::StartReplay(std::shared_ptr<CacheFile> file, std::shared_ptr<const UniqueFd> fd) {
  if (stopping() || file->trace() == nullptr || !file->trace()->replaying()) return;
  pool_->Submit(TaskPriority::kBackground,
                [this, file = std::move(file), fd = std::move(fd)] { Replay(file, fd->get()); });
}

void CacheFiller::Replay(const std::shared_ptr<CacheFile>& file, int fd) {
  const Clock::time_point start = Clock::now();
  FileTrace& trace = *file->trace();
  const BlobMap& map = file->map();
  const std::vector<std::size_t>& order = trace.replay_order();
  FillRequest request;
  request.file = file;
  request.fd = fd;
  request.replay = true;
  std::vector<std::size_t> failed;
  std::uint64_t bytes = 0;
  std::string ended = "done";
  // A far-away source fetches the whole record ahead, a few requests at once, while the
  // writes below wait for demand: a start is one reader after another, with a demand in
  // flight most of the time, so replay fetching only between demands never got ahead of it.
  std::vector<ChunkExtent> ahead;
  ahead.reserve(order.size());
  for (std::size_t i : order) ahead.push_back(map.extents[i]);
  std::shared_ptr<void> fetching = source_->FetchAhead(ahead, trace_.replay_bytes_per_second);
  for (std::size_t k = 0; k < order.size();) {
    // A run: consecutive chunks in the record that sit together in the blob, written (and
    // fetched, through the WillRead hint) together.
    std::size_t end = k + 1;
    std::uint64_t run_bytes = map.extents[order[k]].length;
    while (end < order.size() && order[end] == order[end - 1] + 1 && run_bytes < kGroupBytes) {
      run_bytes += map.extents[order[end++]].length;
    }
    if (trace_.replay_stop_after_off_record > 0 &&
        trace.off_record_demands() >= trace_.replay_stop_after_off_record) {
      ended = "stopped: the container reads elsewhere";
      fetching.reset();  // what has not started is not fetched
      break;
    }
    if (!Throttle(*file, start, bytes) || !WaitForNoDemand(*file)) {
      ended = "abandoned";
      break;
    }
    WriteGroup(request, order[k], order[end - 1] + 1, /*use_cache=*/false, &failed);
    bytes += run_bytes;
    k = end;
  }
  trace.EndReplay();  // demands get their write-ahead windows back
  stats_->ReplayDone(SecondsSince(start));
  Log(LogLevel::kDebug,
      "blob '" + map.id + "': replay " + ended + " after " + std::to_string(bytes) + " bytes");
}

bool CacheFiller::Throttle(const CacheFile& file, Clock::time_point start, std::uint64_t bytes) {
  const std::uint64_t rate = trace_.replay_bytes_per_second;
  if (rate == 0) return !stopping() && !file.closed();
  const Clock::time_point due =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(static_cast<double>(bytes) / rate));
  // Short sleeps, so a closed file or a stopping filler ends the replay soon.
  while (Clock::now() < due) {
    if (stopping() || file.closed()) return false;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(due - Clock::now(), std::chrono::milliseconds(20)));
  }
  return !stopping() && !file.closed();
}

}  // namespace lazyblob
