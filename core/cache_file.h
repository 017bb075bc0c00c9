// CacheFile: one blob's fill state in one cache file (a cachefiles object's backing file,
// or a fanotify front end's sparse file): the blob's chunk map, an opaque hold on the blob
// in its source, and which chunks are already written, so that each chunk is written once.
// It knows nothing of the fd the bytes go through: front ends pass that to CacheFiller.
//
// Chunk states: absent -> writing (claimed by one thread) -> written; a failed write goes
// back to absent so a later request may try again. The "written" state also caches the
// answer of the SEEK_HOLE presence check, so each chunk costs at most one lseek per file.
//
// Thread-safety: thread-safe; the state table is guarded by an internal mutex held only for
// the state change. The map and hold are immutable and shared: fills in flight keep the
// CacheFile (and so the hold) alive after the front end dropped it.
#ifndef LAZYBLOB_CORE_CACHE_FILE_H_
#define LAZYBLOB_CORE_CACHE_FILE_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/chunk_source.h"
#include "core/file_trace.h"
#include "core/mutex.h"

namespace lazyblob {

class CacheFile {
 public:
  enum class Claim {
    kPresent,  // already written: nothing to do
    kMine,     // the caller must write it and then call Finish()
    kBusy,     // another thread is writing it (only from TryClaim)
  };

  explicit CacheFile(OpenedBlob blob)
      : blob_(std::move(blob)), state_(blob_.map->extents.size(), kAbsent) {}

  const BlobMap& map() const { return *blob_.map; }
  const std::shared_ptr<const BlobMap>& shared_map() const { return blob_.map; }

  // Non-blocking claim of chunk `i`.
  Claim TryClaim(std::size_t i) LB_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return ClaimLocked(i);
  }

  // Claim of chunk `i` that waits while another thread writes it; never returns kBusy.
  Claim ClaimOrWait(std::size_t i) LB_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    while (state_[i] == kWriting) cv_.Wait(&mu_);
    return ClaimLocked(i);
  }

  // Ends the caller's claim of chunk `i`: written or back to absent.
  void Finish(std::size_t i, bool written) LB_EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      state_[i] = written ? kWritten : kAbsent;
      written_chunks_ += written;
    }
    cv_.SignalAll();
  }

  // True when every chunk of [first, end) is written (a cheap check, no I/O).
  bool AllWritten(std::size_t first, std::size_t end) const LB_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    for (std::size_t i = first; i < end; ++i) {
      if (state_[i] != kWritten) return false;
    }
    return true;
  }

  // True once every chunk is written (the file needs no more filling).
  bool complete() const LB_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return written_chunks_ == state_.size();
  }

  // Sizes the write-ahead window of a request whose first chunk is `first`, the way the
  // kernel's readahead ramps up: a request that starts inside or right at the end of the
  // previous window (a sequential reader caught up with it) gets twice that window, up to
  // `max_bytes`; any other request gets `base_bytes`. Records the new window, which starts
  // at `window_begin` (the chunk after the request's own), and returns its end (a chunk
  // index). Concurrent requests only disturb the guess, never correctness.
  std::size_t NextWindow(std::size_t first, std::size_t window_begin, std::uint64_t base_bytes,
                         std::uint64_t max_bytes) LB_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    const bool sequential = window_bytes_ > 0 && first >= window_begin_ && first <= window_end_;
    window_bytes_ = sequential ? std::min(window_bytes_ * 2, max_bytes) : base_bytes;
    window_begin_ = window_begin;
    window_end_ = window_begin;
    std::uint64_t bytes = 0;
    const std::vector<ChunkExtent>& extents = blob_.map->extents;
    while (window_end_ < extents.size() && bytes < window_bytes_) {
      bytes += extents[window_end_++].length;
    }
    return window_end_;
  }

  // The file's access-trace state (recording or replaying; null: neither). Set once, by
  // CacheFiller::AttachTrace, before the file is shared with another thread.
  void set_trace(std::shared_ptr<FileTrace> trace) { trace_ = std::move(trace); }
  FileTrace* trace() const { return trace_.get(); }

  // The front end's file takes writes ahead of demand from now on (CacheFiller,
  // "Background writes"): a fanotify sparse file at once, a cachefiles object at its first
  // READ. Set before a demand fill, so that waiting background writers wake at its end.
  // Called on every READ: a load, and a store only the first time.
  void MarkWritable() {
    if (!writable()) writable_.store(true, std::memory_order_release);
  }
  bool writable() const { return writable_.load(std::memory_order_acquire); }

  // The front end no longer serves this file (CLOSE, unmount): no more work ahead of demand.
  void MarkClosed() { closed_.store(true, std::memory_order_relaxed); }
  bool closed() const { return closed_.load(std::memory_order_relaxed); }

 private:
  enum : std::uint8_t { kAbsent = 0, kWriting = 1, kWritten = 2 };

  Claim ClaimLocked(std::size_t i) LB_REQUIRES(mu_) {
    if (state_[i] == kWritten) return Claim::kPresent;
    if (state_[i] == kWriting) return Claim::kBusy;
    state_[i] = kWriting;
    return Claim::kMine;
  }

  const OpenedBlob blob_;
  std::shared_ptr<FileTrace> trace_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> writable_{false};
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<std::uint8_t> state_ LB_GUARDED_BY(mu_);
  std::size_t written_chunks_ LB_GUARDED_BY(mu_) = 0;
  // The last write-ahead window: chunks [window_begin_, window_end_), its size target.
  std::size_t window_begin_ LB_GUARDED_BY(mu_) = 0;
  std::size_t window_end_ LB_GUARDED_BY(mu_) = 0;
  std::uint64_t window_bytes_ LB_GUARDED_BY(mu_) = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_CACHE_FILE_H_
