// RequestEngine: serves cachefiles on-demand requests (OPEN, READ, CLOSE) from a
// ChunkSource into a CacheDevice. One dispatcher thread polls the device and drains every
// pending message into a oneTBB task arena; workers answer OPENs (blob lookup -> copen),
// write READ ranges chunk by chunk into the object's anon fd (plus a write-ahead window)
// and complete them. Every OPEN and READ read from the device is answered exactly once
// (PendingOpen / PendingRead), including on errors and during Stop().
//
// Blocking I/O in oneTBB: workers block in pread (store), pwrite (anon fd) and in waits for
// another worker's load of the same chunk. The engine therefore runs its tasks in its own
// task_arena with `worker_threads` slots (none reserved for external threads) and raises
// tbb::global_control::max_allowed_parallelism so that many threads really exist: oneTBB's
// default (hardware threads - 1 workers, i.e. 1 on the 2-core CI machines) would serialise
// all I/O. Measured (tests/core/request_engine_bench_test.cc, 2 cores shared with builds,
// load average ~10, so noisy): 64 READs whose chunk loads each block 2 ms, plus an O_DIRECT
// 64 KiB pwrite each: 1 thread 173/199 ms, 2 threads 118/109 ms, 4 threads 50/54 ms,
// 8 threads 68/88 ms, 16 threads 44/95 ms (two runs). 32 tasks blocking 2 ms in an
// arena(16) without global_control took 127/218 ms, i.e. serialised on oneTBB's single
// default worker. Scaling is linear up to 4 threads and noise beyond, so the default is
// 4 per hardware thread, at least 8: enough to overlap blocking loads and writes without
// contending on the CPU for decompression.
//
// Write-ahead: a READ writes the whole chunks covering it, then a window of the following
// chunks, then completes. Writing ahead *before* the completion matters: measured with the
// doubles, writing it after the completion let a sequential reader's next READ race the
// window (1 MiB: 426 READs instead of 57 for 64 MiB). Measured again with read_bench (real
// store, 280 MiB image, simulator, medians of 3 paired runs, ratio to the limit loop):
// answering first and writing the window in a separate low-priority arena made one
// sequential reader slower (128 KiB READs 0.55 -> 0.49, 1 MiB 0.75 -> 0.49) and 2-4 threads
// worse (e.g. 4 threads seq 128 KiB 0.75 -> 0.64): the reader catches up with the window
// and sends one READ per chunk (251 -> 1554-3232 READs per run). Writing the window on the
// same worker right after the answer was no better. Both were reverted.
// What helps instead (bench/vm, real kernel in qemu, cat of a 256 MiB file, medians of 3):
// - the READ's chunks and its window are cut into groups of up to 1 MiB of consecutive
//   chunks; idle workers take groups (ServeChunks), so the decompression of one window
//   uses every CPU; the READ is completed when all its groups are written;
// - each group's consecutive chunks go out in one pwritev (64 KiB chunks: one write per
//   chunk cost 0.8 ms each in the VM, mostly ext4 block allocation);
// - the window starts at write_ahead_bytes and doubles for each READ that lands at the end
//   of the previous window, up to kWindowGrowth times (CacheObject::NextWindow), like the
//   kernel's readahead; a READ elsewhere resets it, so random readers pay little.
// Cold read 12.4 s -> 4.7 s (223 -> 34 READs). Chunks already in the cache file or being
// written by another thread are skipped.
//
// Thread-safety: Start/Stop/destructor from one controlling thread; Restore,
// set_write_ahead_bytes and the accessors from any thread.
// Lifetimes: device, source and stats are borrowed and must outlive the engine (until
// Stop() returned or the destructor ran).
#ifndef LAZYBLOB_CORE_REQUEST_ENGINE_H_
#define LAZYBLOB_CORE_REQUEST_ENGINE_H_

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "core/cache_device.h"
#include "core/cache_object.h"
#include "core/chunk_cache.h"
#include "core/chunk_source.h"
#include "core/engine_stats.h"
#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

struct EngineOptions {
  // Threads serving requests. 0 = 8 per hardware thread, at least 8 (see the class comment
  // for the measurement: the work is I/O-bound and blocking).
  int worker_threads = 0;

  // Bytes of chunks following a READ's range written along with it. Default 1 MiB: the
  // kernel's READs follow readahead (128 KiB by default), and the per-request round trip
  // dominates a cold sequential read (PROTOCOL.md: 1 MiB readahead made it 1.8x faster).
  // Measured with the test doubles (request_engine_bench_test.cc, 64 MiB blob of 64 KiB
  // chunks read sequentially in 128 KiB READs): 0 -> 512 READs, 256 KiB -> 171,
  // 512 KiB -> 103, 1 MiB -> 57, 2 MiB -> 31, 4 MiB -> 16. Beyond 1 MiB the saving in
  // requests (at most 57 per 64 MiB) is small against the bytes written in vain by random
  // 4 KiB reads (chunk + window each), which grow linearly with the window.
  std::uint64_t write_ahead_bytes = 1 << 20;

  // Bytes of decompressed chunks kept for reuse across objects (LRU). 0 disables.
  std::uint64_t chunk_cache_bytes = 256ull << 20;

  // At OPEN, write the whole blob into the cache file in the background, one chunk at a
  // time, pausing while demand READs are in flight.
  bool prefetch_on_open = false;

  // Optional: called at OPEN before the blob map is loaded; the returned handle is kept
  // until CLOSE (store/: ChunkStore::LeaseBlob). A kNotFound error fails the OPEN with
  // -ENOENT, other errors with -EIO.
  std::function<Result<std::shared_ptr<void>>(std::string_view blob_id)> lease_blob;

  Status Validate() const;
  // worker_threads with the default applied.
  int ResolvedWorkerThreads() const;
};

class RequestEngine {
 public:
  // Validates `options` and starts the dispatcher thread.
  static Result<std::unique_ptr<RequestEngine>> Start(const EngineOptions& options,
                                                      CacheDevice* device, ChunkSource* source,
                                                      EngineStats* stats);
  RequestEngine(const RequestEngine&) = delete;
  RequestEngine& operator=(const RequestEngine&) = delete;
  // Stop()s.
  ~RequestEngine();

  // After a worker restart: the kernel re-sends OPENs and pending READs (counted in stats).
  Status Restore();

  // Stops reading the device, waits until every request already read is answered (READs
  // still running skip their write-ahead; background prefetch is abandoned), then returns.
  // Idempotent.
  void Stop();

  // An eventfd that becomes readable when the dispatcher stopped because the device failed
  // (device_status() says why). Borrowed; valid for the engine's lifetime.
  int failed_fd() const { return failed_fd_.get(); }
  Status device_status() const;

  // Reloadable at run time (e.g. on SIGHUP).
  void set_write_ahead_bytes(std::uint64_t bytes) { write_ahead_bytes_.store(bytes); }
  std::uint64_t write_ahead_bytes() const { return write_ahead_bytes_.load(); }

  std::size_t open_objects() const;

 private:
  using Clock = std::chrono::steady_clock;

  RequestEngine(const EngineOptions& options, CacheDevice* device, ChunkSource* source,
                EngineStats* stats);

  void DispatchLoop();
  // false: the device failed.
  bool DrainDevice(short revents);
  void Dispatch(CacheMessage message, Clock::time_point received);
  void Submit(tbb::task_arena& arena, std::function<void()> work);
  void RunNext(std::deque<std::function<void()>>* queue);

  void HandleOpen(OpenMessage message, Clock::time_point received);
  void HandleRead(const ReadMessage& message, Clock::time_point received);
  void HandleClose(const CloseMessage& message, Clock::time_point received);
  void Prefetch(const std::shared_ptr<CacheObject>& object);

  // Groups of consecutive chunks of about this size go to one thread and out in one write.
  static constexpr std::uint64_t kGroupBytes = 1024 * 1024;
  struct GroupJob;
  // A sequential reader's window doubles per READ up to this many times write_ahead_bytes
  // (CacheObject::NextWindow).
  static constexpr std::uint64_t kWindowGrowth = 8;
  // Makes chunks [first, end) of `object` present in its cache file: [first, demand_end) are
  // the READ's own (waited for when another thread writes one), the rest its write-ahead
  // window (left to another writer, skipped on failure). The range is cut into groups that
  // this thread and up to worker_threads - 1 helper tasks take in order; returns when all are
  // done. false when one of the READ's own chunks could not be read or written.
  bool ServeChunks(const std::shared_ptr<CacheObject>& object, std::size_t first,
                   std::size_t demand_end, std::size_t end, std::uint64_t req_begin,
                   std::uint64_t req_end);
  void RunGroups(GroupJob& job);
  // One group, on this thread: claims its chunks in order, loads them (through the shared
  // chunk cache when `use_cache`; prefetch bypasses it) and writes each contiguous run of
  // claimed chunks with one pwritev. [req_begin, req_end) is the READ's range, for stats.
  bool WriteGroup(CacheObject& object, std::size_t begin, std::size_t end, std::size_t demand_end,
                  bool use_cache, std::uint64_t req_begin, std::uint64_t req_end);

  Result<ChunkCache::Buffer> LoadChunk(const BlobMap& map, std::size_t i, bool use_cache);
  std::shared_ptr<CacheObject> FindObject(std::uint32_t object_id);

  const EngineOptions options_;
  CacheDevice* const device_;
  ChunkSource* const source_;
  EngineStats* const stats_;
  std::atomic<std::uint64_t> write_ahead_bytes_;

  ChunkCache cache_;
  tbb::global_control parallelism_;
  tbb::task_arena arena_;
  tbb::task_arena prefetch_arena_;

  UniqueFd wake_fd_;    // eventfd: Stop() wakes the dispatcher
  UniqueFd failed_fd_;  // eventfd: the dispatcher saw a device failure
  std::atomic<bool> stopping_{false};
  std::atomic<int> demand_in_flight_{0};
  std::thread dispatcher_;

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  int tasks_ = 0;                                     // guarded by mu_: submitted and not finished
  std::deque<std::function<void()>> queue_;           // guarded by mu_; run in arena_
  std::deque<std::function<void()>> prefetch_queue_;  // guarded by mu_; in prefetch_arena_
  Status device_status_;                              // guarded by mu_
  bool stopped_ = false;                              // guarded by mu_
  std::unordered_map<std::uint32_t, std::shared_ptr<CacheObject>> objects_;  // guarded by mu_
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_REQUEST_ENGINE_H_
