// RequestEngine: the cachefiles on-demand front end. It reads the kernel's OPEN, READ and
// CLOSE messages from a CacheDevice and serves them from a ChunkSource through a
// CacheFiller:
//  - OPEN: the cookie key is the blob id; the blob is opened in the source (its map and a
//    hold that keeps it servable until CLOSE) and the OPEN answered with the blob's size,
//    or with -ENOENT (unknown blob) / -EIO (anything else) / -EINVAL (not an EROFS key);
//  - READ: the chunks covering the range, plus a write-ahead window, are written into the
//    object's anon fd, then the READ is completed; a chunk that could not be written
//    leaves a hole, which the kernel turns into EIO for that range only;
//  - CLOSE: the object leaves the table; READs in flight keep its fd until they answer.
//
// Promises: every OPEN and READ read from the device is answered exactly once
// (PendingOpen / PendingRead), on every path: errors, exceptions in tasks, Stop(). Only
// bytes the source verified reach an anon fd (CacheFiller).
//
// Threads: one dispatcher thread polls the device and hands each message to the TaskPool
// (OPEN and READ at demand priority; CLOSE inline, as it only updates the table);
// prefetch runs at background priority.
//
// Thread-safety: Start/Stop/destructor from one controlling thread; Restore,
// set_write_ahead_bytes and the accessors from any thread.
// Lifetimes: device, source and stats are borrowed and must outlive the engine (until
// Stop() returned or the destructor ran).
#ifndef LAZYBLOB_CORE_REQUEST_ENGINE_H_
#define LAZYBLOB_CORE_REQUEST_ENGINE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "core/cache_device.h"
#include "core/cache_file.h"
#include "core/cache_filler.h"
#include "core/chunk_source.h"
#include "core/engine_stats.h"
#include "core/mutex.h"
#include "core/status.h"
#include "core/task_pool.h"
#include "core/unique_fd.h"

namespace lazyblob {

// Watches the READs a worker serves and the blobs it has open (tools/: the crash journal
// that lets the supervisor spot a READ that kills every worker and keep the leases of the
// blobs open when a worker died; test failpoints). Called on worker threads, concurrently;
// Begin before anything is written for the READ, End after it is answered; ObjectOpened
// once an OPEN's blob is open (its hold taken), ObjectClosed when that object goes.
// Lifetime: borrowed, must outlive the engine.
class ReadObserver {
 public:
  virtual ~ReadObserver() = default;
  // false: fail this READ at once, without serving it (the reader gets EIO).
  virtual bool BeginRead(std::uint32_t msg_id, std::string_view blob_id, std::uint64_t offset,
                         std::uint64_t length) = 0;
  virtual void EndRead(std::uint32_t msg_id) = 0;
  virtual void ObjectOpened(std::string_view blob_id) { (void)blob_id; }
  virtual void ObjectClosed(std::string_view blob_id) { (void)blob_id; }
};

struct EngineOptions {
  // Threads serving requests. 0 = 4 per hardware thread, at least 8: the work blocks on
  // I/O (docs/engine-measurements.md has the measurement).
  int worker_threads = 0;

  // Bytes of chunks following a READ's range written along with it; ramps up to 8x for
  // sequential readers (CacheFillerOptions). Default 1 MiB, at most 1 GiB.
  std::uint64_t write_ahead_bytes = CacheFillerOptions{}.write_ahead_bytes;

  // Bytes of decompressed chunks kept for reuse across objects (LRU). 0 disables.
  std::uint64_t chunk_cache_bytes = CacheFillerOptions{}.chunk_cache_bytes;

  // Answer READs once their own chunks are written; the write-ahead window follows in a
  // task of its own (CacheFillerOptions::write_ahead_async; for a far-away source).
  bool write_ahead_async = false;

  // At OPEN, write the whole blob into the cache file in the background, one chunk at a
  // time, pausing while demand READs are in flight.
  bool prefetch_on_open = false;

  // Recording what a start reads, and replaying it at later OPENs (TraceOptions; its store
  // is borrowed and must outlive the engine). Off by default (no store).
  TraceOptions trace;

  // A worker restarted after another died: before reading anything, ask the kernel to
  // re-send OPENs (new object ids and fds) and then the READs that were pending
  // (`restore`), so they are served like any request.
  bool restore_on_start = false;

  // Optional (may be null): see ReadObserver.
  ReadObserver* read_observer = nullptr;

  // Requests read from the device and not yet picked up by a worker. At the bound the
  // dispatcher stops reading the device until workers catch up: the kernel keeps what is
  // not read (its readers wait), so memory stays bounded however many READs are pending.
  // Each queued request costs about 200 bytes.
  int max_queued_requests = 4096;

  Status Validate() const;
  // worker_threads with the default applied.
  int ResolvedWorkerThreads() const;
  CacheFillerOptions filler() const;
};

class RequestEngine {
 public:
  // Validates `options`, restores if asked, and starts the dispatcher thread.
  static Result<std::unique_ptr<RequestEngine>> Start(const EngineOptions& options,
                                                      CacheDevice* device, ChunkSource* source,
                                                      EngineStats* stats);
  RequestEngine(const RequestEngine&) = delete;
  RequestEngine& operator=(const RequestEngine&) = delete;
  // Stop()s.
  ~RequestEngine();

  // Stops reading the device, waits until every request already read is answered (READs
  // still running skip their write-ahead; background prefetch is abandoned), then returns.
  // Idempotent.
  void Stop();

  // An eventfd that becomes readable when the dispatcher stopped because the device failed
  // (device_status() says why). Borrowed; valid for the engine's lifetime.
  int failed_fd() const { return failed_fd_.get(); }
  Status device_status() const;

  // Reloadable at run time (e.g. on SIGHUP).
  void set_write_ahead_bytes(std::uint64_t bytes) { filler_.set_write_ahead_bytes(bytes); }
  std::uint64_t write_ahead_bytes() const { return filler_.write_ahead_bytes(); }

  std::size_t open_objects() const;

 private:
  using Clock = std::chrono::steady_clock;

  // An object the kernel OPENed: its anon fd and the blob's cache file state.
  struct Object {
    std::uint32_t object_id = 0;
    std::shared_ptr<const UniqueFd> anon_fd;
    std::shared_ptr<CacheFile> file;
  };

  RequestEngine(const EngineOptions& options, CacheDevice* device, ChunkSource* source,
                EngineStats* stats);

  Status Restore();
  void DispatchLoop();
  // false: the device failed.
  bool DrainDevice(short revents);
  // A read failed for lack of fds or memory: not a device failure.
  static bool IsResourcePressure(const Status& status);
  void BackOff(const Status& why);
  void Dispatch(CacheMessage message, Clock::time_point received);
  // Waits while max_queued_requests are queued; false when stopping.
  bool WaitForQueueRoom() LB_EXCLUDES(queue_mu_);
  // A queued request was picked up by a worker.
  void Dequeued() LB_EXCLUDES(queue_mu_);

  void HandleOpen(OpenMessage message, Clock::time_point received);
  // Registers an OPENed object under its id. An object that held the id (the kernel
  // reused a live id) is closed and released before this returns.
  void InstallObject(std::shared_ptr<Object> object) LB_EXCLUDES(mu_);
  void HandleRead(const ReadMessage& message, Clock::time_point received);
  void HandleClose(const CloseMessage& message, Clock::time_point received);
  // A request whose payload did not decode: failed at once, counted as malformed.
  void HandleRejected(const RejectedMessage& message, Clock::time_point received);
  std::shared_ptr<Object> FindObject(std::uint32_t object_id) LB_EXCLUDES(mu_);
  void SetDeviceStatus(Status status) LB_EXCLUDES(mu_);

  const EngineOptions options_;
  CacheDevice* const device_;
  ChunkSource* const source_;
  EngineStats* const stats_;
  TaskPool pool_;
  CacheFiller filler_;

  UniqueFd wake_fd_;    // eventfd: Stop() wakes the dispatcher
  UniqueFd failed_fd_;  // eventfd: the dispatcher saw a device failure
  std::atomic<bool> stopping_{false};
  std::thread dispatcher_;
  std::chrono::milliseconds pressure_backoff_{0};  // dispatcher thread only

  // Backpressure: requests handed to the pool and not yet started.
  Mutex queue_mu_;
  CondVar queue_cv_;  // signalled when a queued request starts, and on Stop
  int queued_ LB_GUARDED_BY(queue_mu_) = 0;

  mutable Mutex mu_;
  Status device_status_ LB_GUARDED_BY(mu_);
  bool stopped_ LB_GUARDED_BY(mu_) = false;
  std::unordered_map<std::uint32_t, std::shared_ptr<Object>> objects_ LB_GUARDED_BY(mu_);
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_REQUEST_ENGINE_H_
