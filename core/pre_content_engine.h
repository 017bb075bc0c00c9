// PreContentEngine: the pre-content front end (fanotify FAN_PRE_ACCESS on a blob's sparse
// cache file, which an EROFS file-backed mount reads). It serves access events from a
// PreContentSource through the same CacheFiller, TaskPool and ChunkSource as the cachefiles
// front end (RequestEngine), and knows nothing of fanotify itself.
//
// Files: the caller registers each sparse cache file with AddFile (the blob, opened in the
// source, and a "fill fd": a writable fd of the file opened BEFORE the file was marked, so
// writing through it raises no event), makes whatever must be present before the mount
// present (FillRanges / ReadFilled), then Mark()s it. Files are found by (st_dev, st_ino).
//
// Per event, on the dispatcher thread: find the file, clip the range to the blob's size,
// and
//  - allow at once when nothing is left after clipping, or every chunk of the range is
//    already written (the fast path: no task hop, no I/O);
//  - else hand it to the TaskPool, which fills the chunks covering the range plus a
//    write-ahead window through the fill fd (CacheFiller::FillRange), then allows, or denies
//    with EIO when a demanded chunk could not be written (a corrupt chunk fails its range
//    only);
//  - deny with EIO an event on a file it does not know (never allow an unfilled hole).
// Once a file is complete its mark is removed: a marked file raises an event on every read
// of its backing pages, even filled ones (transport/FANOTIFY_FACTS.md: 2.4x on re-reads).
//
// Promises: every event read is answered exactly once (PendingAccess), on every path:
// errors, exceptions in tasks, Stop(). Nothing is allowed unless its range holds verified
// bytes (allow follows a successful fill, or chunk states that only a successful write
// sets). At most max_events_in_flight events are read and unanswered at once: the rest wait
// in the kernel's queue.
//
// Start() first answers the orphans a previous worker left (filled through the fill fds,
// then answered by number), and when that worker may have died between reading events and
// recording them, completes every marked file and then answers all unknown numbers (allow
// if every marked file is complete, else deny EIO), all before reading any new event.
//
// Thread-safety: Start/Stop/destructor from one controlling thread; the file methods and
// accessors from any thread. Lifetimes: source, chunk source and stats are borrowed and
// must outlive the engine.
#ifndef LAZYBLOB_CORE_PRE_CONTENT_ENGINE_H_
#define LAZYBLOB_CORE_PRE_CONTENT_ENGINE_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "core/cache_file.h"
#include "core/cache_filler.h"
#include "core/chunk_source.h"
#include "core/engine_stats.h"
#include "core/mutex.h"
#include "core/pre_content_source.h"
#include "core/request_engine.h"
#include "core/status.h"
#include "core/task_pool.h"
#include "core/unique_fd.h"

namespace lazyblob {

struct PreContentEngineOptions {
  // Threads, write-ahead, chunk cache and prefetch, as for cachefiles (prefetch_on_open:
  // the whole blob is written in the background once its file is marked).
  EngineOptions engine;
  // Events read and not yet answered, at most. Each holds an fd and a journal record.
  // Default 4096.
  std::size_t max_events_in_flight = 4096;
  // Remove a file's mark once it is complete (and never mark a complete one). Default true;
  // false keeps every registered file marked, so that each read of its backing pages still
  // raises an event (answered on the fast path): only to measure what the mark costs.
  bool unmark_complete_files = true;

  Status Validate() const;
};

// One sparse cache file the engine serves. Immutable but for the mark flag.
class ServedFile {
 public:
  ServedFile(std::shared_ptr<CacheFile> cache, UniqueFd fill_fd, std::uint64_t dev,
             std::uint64_t ino)
      : cache_(std::move(cache)),
        fill_fd_(std::make_shared<const UniqueFd>(std::move(fill_fd))),
        dev_(dev),
        ino_(ino) {}

  const std::string& blob_id() const { return cache_->map().id; }
  std::uint64_t size() const { return cache_->map().size; }
  const std::shared_ptr<CacheFile>& cache() const { return cache_; }
  int fill_fd() const { return fill_fd_->get(); }  // borrowed
  std::uint64_t dev() const { return dev_; }
  std::uint64_t ino() const { return ino_; }
  bool marked() const { return marked_.load(); }
  bool complete() const { return cache_->complete(); }

 private:
  friend class PreContentEngine;
  const std::shared_ptr<CacheFile> cache_;
  const std::shared_ptr<const UniqueFd> fill_fd_;
  const std::uint64_t dev_, ino_;
  std::atomic<bool> marked_{false};
};

class PreContentEngine {
 public:
  // What the engine did, for logs and tests.
  struct Counters {
    std::uint64_t events = 0;        // events read (orphans excluded)
    std::uint64_t fast_allowed = 0;  // allowed on the dispatcher thread without a fill
    std::uint64_t filled = 0;        // allowed after a fill
    std::uint64_t denied = 0;        // denied (failed chunks, unknown files)
    std::uint64_t orphans = 0;       // orphans answered at Start
    std::uint64_t unmarked = 0;      // files unmarked because they became complete
  };

  // Validates `options`; does not read events yet (Start).
  static Result<std::unique_ptr<PreContentEngine>> Create(const PreContentEngineOptions& options,
                                                          PreContentSource* source,
                                                          ChunkSource* chunks, EngineStats* stats);
  PreContentEngine(const PreContentEngine&) = delete;
  PreContentEngine& operator=(const PreContentEngine&) = delete;
  ~PreContentEngine();  // Stop()s

  // Registers the sparse cache file of `blob`, open as `fill_fd` (writable, opened before
  // any mark; its size is the blob's). Chunks already present in it (an earlier run's) are
  // recorded as written. kAlreadyExists when that file is registered already.
  Result<std::shared_ptr<ServedFile>> AddFile(OpenedBlob blob, UniqueFd fill_fd);
  // Marks the file (after what must be present before the mount is present), unless it is
  // complete already; starts its prefetch when configured.
  Status Mark(ServedFile& file);
  // Forgets the file and removes its mark; fills in flight finish.
  void RemoveFile(ServedFile& file);
  std::shared_ptr<ServedFile> FindFile(std::uint64_t dev, std::uint64_t ino) const;
  std::vector<std::shared_ptr<ServedFile>> files() const;

  // Makes the whole chunks covering each [offset, offset + length) present (demand, no
  // write-ahead). kCorruption / kIoError naming the first chunk that failed.
  Status FillRanges(ServedFile& file,
                    std::span<const std::pair<std::uint64_t, std::uint64_t>> ranges);
  // FillRanges of [offset, offset + out.size()), then reads it back through the fill fd.
  Status ReadFilled(ServedFile& file, std::uint64_t offset, std::span<std::byte> out);
  // Makes every chunk present; then unmarks the file.
  Status FillAll(ServedFile& file);

  // Answers the orphans of an earlier worker (see above), then starts the dispatcher.
  Status Start();
  // Stops reading, waits until every event read is answered (fills skip write-ahead,
  // prefetch is abandoned). Events still queued in the kernel stay pending. Idempotent.
  void Stop();

  // Readable when the dispatcher stopped because the source failed (source_status()).
  int failed_fd() const { return failed_fd_.get(); }
  Status source_status() const;
  Counters counters() const;

  void set_write_ahead_bytes(std::uint64_t bytes) { filler_.set_write_ahead_bytes(bytes); }
  std::uint64_t write_ahead_bytes() const { return filler_.write_ahead_bytes(); }

 private:
  using Clock = std::chrono::steady_clock;
  using FileKey = std::pair<std::uint64_t, std::uint64_t>;
  struct Event;

  PreContentEngine(const PreContentEngineOptions& options, PreContentSource* source,
                   ChunkSource* chunks, EngineStats* stats);

  Status Recover();
  Status AnswerUnrecorded();
  void DispatchLoop();
  // Waits until an event may be read; false when stopping.
  bool WaitForCapacity() LB_EXCLUDES(mu_);
  // false: the source failed.
  bool DrainSource();
  void Dispatch(std::shared_ptr<Event> event);
  void Serve(ServedFile& file, Event& event, std::uint64_t begin, std::uint64_t end);
  void Answer(Event& event, int error, RequestResult result);
  void EventDone() LB_EXCLUDES(mu_);
  void UnmarkIfComplete(ServedFile& file);
  void ScanPresent(ServedFile& file);
  void SetSourceStatus(Status status) LB_EXCLUDES(mu_);

  const PreContentEngineOptions options_;
  PreContentSource* const source_;
  EngineStats* const stats_;
  TaskPool pool_;
  CacheFiller filler_;

  UniqueFd wake_fd_;    // eventfd: Stop() wakes the dispatcher
  UniqueFd failed_fd_;  // eventfd: the dispatcher saw a source failure
  std::atomic<bool> stopping_{false};
  std::thread dispatcher_;

  std::atomic<std::uint64_t> events_{0}, fast_allowed_{0}, filled_{0}, denied_{0}, orphans_{0},
      unmarked_{0};

  mutable Mutex mu_;
  CondVar capacity_cv_;  // signalled when an event is answered, and on Stop
  std::size_t in_flight_ LB_GUARDED_BY(mu_) = 0;
  Status source_status_ LB_GUARDED_BY(mu_);
  bool started_ LB_GUARDED_BY(mu_) = false;
  bool stopped_ LB_GUARDED_BY(mu_) = false;
  std::map<FileKey, std::shared_ptr<ServedFile>> files_ LB_GUARDED_BY(mu_);
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_PRE_CONTENT_ENGINE_H_
