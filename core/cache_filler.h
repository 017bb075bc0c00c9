// CacheFiller: makes byte ranges of a blob present in a cache file, the part of serving that
// every front end shares (cachefiles READs, fanotify pre-content events, prefetch). It
// knows nothing of kernel messages: its input is "make chunks [first, end) of this
// CacheFile present through this writable fd, [first, demand_end) being demanded", its
// output which demanded chunks it could not make present.
//
// How a fill runs:
//  - the chunks are cut into groups of up to kGroupBytes of consecutive chunks; the calling
//    thread and up to threads - 1 helper tasks (TaskPool, demand priority) take groups in
//    order, so one request's decompression uses every idle CPU;
//  - each chunk is claimed in the CacheFile (written once per file), checked with SEEK_HOLE
//    (present from an earlier run of the daemon: skipped), loaded through the shared
//    decompressed-chunk cache (ChunkCache: LRU, single-flight) from the ChunkSource, which
//    verifies it, and each run of consecutive loaded chunks goes out in one pwritev;
//  - only verified bytes are written: a chunk that fails to load is never written;
//  - chunks beyond demand_end (write-ahead) are best effort: left to another writer,
//    skipped on failure, not started once the file is closed or the filler stopping.
// FillRange adds planning on top: the chunks covering a byte range, plus a write-ahead
// window that ramps up for sequential readers (CacheFile::NextWindow).
//
// Prefetch writes a whole blob in the background (TaskPool background priority), one chunk
// at a time, and waits while any demand request is in flight (BeginDemand/EndDemand).
//
// Background writes (prefetch, replay) begin only once the front end marked the file
// writable (CacheFile::MarkWritable): cachefiles attaches the cache file to the OPEN's anon
// fd only after the copen was processed, and refuses earlier writes with ENOBUFS
// (tests/e2e/KERNEL_FACTS.md (b)), so its front end marks a file at its first READ. (Writing
// right after the copen raced the attach: the simulator dropped such bytes, and a READ of
// a chunk marked written was then answered with a hole.)
//
// docs/engine-measurements.md has the measurements behind the group size, the window and
// writing ahead before a request is answered.
//
// Thread-safety: thread-safe; Fill/FillRange from many threads at once. Lifetimes: source,
// stats and pool are borrowed and must outlive the filler; fds passed to Fill must stay
// open until it returns, and those passed to StartPrefetch are shared.
#ifndef LAZYBLOB_CORE_CACHE_FILLER_H_
#define LAZYBLOB_CORE_CACHE_FILLER_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <vector>

#include "core/access_trace.h"
#include "core/cache_file.h"
#include "core/chunk_cache.h"
#include "core/chunk_source.h"
#include "core/engine_stats.h"
#include "core/mutex.h"
#include "core/status.h"
#include "core/task_pool.h"
#include "core/unique_fd.h"

namespace lazyblob {

// Recording a start's accesses and replaying them on later starts (core/access_trace.h).
struct TraceOptions {
  // Where records are loaded from and saved to. Borrowed, must outlive the filler; null
  // (the default): no recording, no replay.
  AccessTraceStore* store = nullptr;
  // Demands during this long after OPEN are recorded, when the blob has no record yet.
  // 0 (the default): nothing is recorded. At most 1 hour.
  std::chrono::milliseconds record_window{0};
  // While a blob is recorded, demand write-ahead windows start from at most this many bytes
  // (CacheFillerOptions::write_ahead_bytes if smaller). A record keeps every chunk written
  // ahead (the kernel never asks for those again, so the daemon cannot tell which were
  // read): smaller windows make a tighter record, which every replaying node then fetches.
  // Default 256 KiB (bench/results/origin.md: a 14 MB record instead of 26 MB, replay
  // 1.09 s instead of 1.5 s, the recording node 4.6 s instead of 3.2 s). At most 1 GiB.
  std::uint64_t record_write_ahead_bytes = 256 << 10;
  // At OPEN, a blob's record is replayed: its chunks written in order, ahead of demand, at
  // background priority, pausing while any demand request is in flight; a far-away source
  // is asked to fetch them all ahead meanwhile (ChunkSource::FetchAhead). While a replay
  // runs, a demand writes only its own chunks: the record says what the start reads next,
  // and demand windows would only compete with it for the link. Default true.
  bool replay = true;
  // Replay writes at most this many (uncompressed) bytes per second, and asks a far-away
  // source to fetch at most this many (stored) bytes per second. 0 (the default): unbounded.
  std::uint64_t replay_bytes_per_second = 0;
  // Replay stops once this many demand requests asked for chunks the record does not name
  // (the container reads elsewhere). 0: never stops early. Default 32.
  int replay_stop_after_off_record = 32;

  Status Validate() const;
};

struct CacheFillerOptions {
  // Bytes of chunks following a request's range written along with it; the window starts
  // here and doubles for sequential readers up to kWindowGrowth times. 0 disables.
  // Default 1 MiB (docs/engine-measurements.md). At most 1 GiB.
  std::uint64_t write_ahead_bytes = 1 << 20;

  // Bytes of decompressed chunks kept for reuse across files (LRU). 0 disables.
  std::uint64_t chunk_cache_bytes = 256ull << 20;

  // Answer after the demanded chunks; the window goes on in a task of its own (demand
  // priority). For a source far away (a registry), whose window costs round trips the
  // reader should not wait for: a later READ of a chunk still in the window waits for its
  // writer (CacheFile claims) and the source's single flight instead of fetching it again.
  // Default false: a local store writes the window first (docs/engine-measurements.md).
  bool write_ahead_async = false;

  TraceOptions trace;

  Status Validate() const;
};

// One fill: chunks [first, end) of `file`, through `fd`.
struct FillRequest {
  std::shared_ptr<CacheFile> file;
  int fd = -1;  // borrowed, writable: the cache file (O_DIRECT rules: core/anon_fd_writer.h)
  std::size_t first = 0;
  std::size_t demand_end = 0;  // [first, demand_end) demanded, [demand_end, end) ahead
  std::size_t end = 0;
  // The bytes the requester asked for, for the "written ahead" statistic.
  std::uint64_t asked_begin = 0, asked_end = 0;
  bool replay = false;  // written by trace replay (counted as prefetch)
};

struct FillResult {
  std::vector<std::size_t> failed;  // demanded chunks that are not present
  bool ok() const { return failed.empty(); }
};

class CacheFiller {
 public:
  // Groups of consecutive chunks of about this size go to one thread and out in one write.
  static constexpr std::uint64_t kGroupBytes = 1024 * 1024;
  // A sequential reader's window doubles per request up to this many times
  // write_ahead_bytes.
  static constexpr std::uint64_t kWindowGrowth = 8;

  // `options` must be valid (Validate()).
  CacheFiller(const CacheFillerOptions& options, ChunkSource* source, EngineStats* stats,
              TaskPool* pool);
  CacheFiller(const CacheFiller&) = delete;
  CacheFiller& operator=(const CacheFiller&) = delete;

  // Blocks until every demanded chunk is written or failed and the window is done.
  FillResult Fill(const FillRequest& request);

  // Fills the chunks covering [offset, offset + length) (clipped to the blob) plus a
  // write-ahead window after them.
  FillResult FillRange(const std::shared_ptr<CacheFile>& file, int fd, std::uint64_t offset,
                       std::uint64_t length);
  // The same with a shared fd: with write_ahead_async the window is written after this
  // returns, by a task that keeps `fd` open.
  FillResult FillRange(const std::shared_ptr<CacheFile>& file, std::shared_ptr<const UniqueFd> fd,
                       std::uint64_t offset, std::uint64_t length);

  // Writes every chunk of `file` through `fd` in the background, yielding to demand.
  // Abandoned when the file is closed (Close) or the filler stops.
  void StartPrefetch(std::shared_ptr<CacheFile> file, std::shared_ptr<const UniqueFd> fd);

  // Access traces. Before `file` is shared with another thread (before its OPEN is
  // answered): attaches its trace state, replaying the blob's record if it has one, else
  // recording if configured. True when StartReplay should follow once the OPEN is answered.
  bool AttachTrace(CacheFile& file);
  // The same, with the record loaded ahead: LoadRecordAhead starts loading the blob's record
  // on a thread of its own (from a registry it costs round trips), so that it overlaps the
  // source's OpenBlob; AttachTrace waits for it. An invalid future: nothing to load.
  std::future<std::shared_ptr<Result<AccessTrace>>> LoadRecordAhead(const std::string& blob_id);
  bool AttachTrace(CacheFile& file, std::future<std::shared_ptr<Result<AccessTrace>>> loading);
  // Replays `file`'s record through `fd` in the background (TaskPool background priority):
  // hands the whole record to the source's FetchAhead, then writes it one run of consecutive
  // chunks at a time, waiting while any demand request is in flight,
  // at most TraceOptions::replay_bytes_per_second; stops when the file is closed, the filler
  // stops, or demand went off the record often enough.
  void StartReplay(std::shared_ptr<CacheFile> file, std::shared_ptr<const UniqueFd> fd);

  // Saves `file`'s record now if one is being made (a front end stopping while the file
  // is still open); later demands of it are no longer recorded.
  void SaveRecord(CacheFile& file);

  // A demand request is queued or running (BeginDemand) / answered (EndDemand): prefetch
  // waits while any is.
  void BeginDemand();
  void EndDemand();

  // The front end stopped serving `file`: no more write-ahead or prefetch for it. Saves its
  // record if one is being made (synchronously: a small file) and counts its wasted replay.
  void Close(CacheFile& file);

  // No more write-ahead or prefetch anywhere; demanded chunks are still written. Idempotent.
  void Stop();

  void set_write_ahead_bytes(std::uint64_t bytes) { write_ahead_bytes_.store(bytes); }
  std::uint64_t write_ahead_bytes() const { return write_ahead_bytes_.load(); }

 private:
  class Batch;
  struct GroupJob;

  // The chunks covering [offset, offset + length) and the write-ahead window after them.
  FillRequest PlanRange(const std::shared_ptr<CacheFile>& file, int fd, std::uint64_t offset,
                        std::uint64_t length);
  void RunGroups(GroupJob& job);
  // One group on this thread; appends the demanded chunks it could not write to `failed`.
  void WriteGroup(const FillRequest& request, std::size_t begin, std::size_t end, bool use_cache,
                  std::vector<std::size_t>* failed);
  // Claims chunk `i` for this thread. Demanded chunks wait for another writer (after
  // `batch` is written out: never wait while holding claims); others are left to it.
  bool Claim(CacheFile& file, std::size_t i, bool demand, Batch& batch);
  Result<ChunkCache::Buffer> LoadChunk(const ChunkExtent& extent, bool use_cache);
  void Prefetch(const std::shared_ptr<CacheFile>& file, int fd);
  void Replay(const std::shared_ptr<CacheFile>& file, int fd);
  // Sleeps until `bytes` fit the replay bandwidth since `start`; false when the replay of
  // `file` should end.
  bool Throttle(const CacheFile& file, std::chrono::steady_clock::time_point start,
                std::uint64_t bytes);
  // A trace store is set and records are made or replayed.
  bool TracesWanted() const;
  // AttachTrace's work once the record (or kNotFound) is at hand.
  bool AttachRecord(CacheFile& file, const Result<AccessTrace>& record);
  // Where a demand's write-ahead window starts: write_ahead_bytes, but none while a replay
  // runs, and at most TraceOptions::record_write_ahead_bytes while the file is recorded.
  std::uint64_t WriteAheadBase(const CacheFile& file) const;
  // Trace bookkeeping of a demand fill of [first, demand_end) writing [demand_end, end) ahead.
  void NoteDemand(CacheFile& file, std::size_t first, std::size_t demand_end, std::size_t end);
  // Waits until `file` is writable and while any demand is in flight; false when
  // the background work on `file` should end (closed, or the filler stops).
  bool WaitForNoDemand(const CacheFile& file) LB_EXCLUDES(mu_);
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  ChunkSource* const source_;
  EngineStats* const stats_;
  TaskPool* const pool_;
  std::atomic<std::uint64_t> write_ahead_bytes_;
  const bool write_ahead_async_;
  const TraceOptions trace_;
  ChunkCache cache_;
  std::atomic<bool> stopping_{false};

  Mutex mu_;
  CondVar demand_cv_;  // signalled when demand_ drops to 0, on Close and on Stop
  int demand_ LB_GUARDED_BY(mu_) = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_CACHE_FILLER_H_
