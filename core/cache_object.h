// CacheObject: one object the kernel OPENed (a blob behind an anon fd), as the request
// engine keeps it between OPEN and CLOSE: the anon fd, the blob's chunk map, the blob lease
// and a per-chunk state map so a chunk is written into the cache file once.
//
// Chunk states: absent -> writing (claimed by one thread) -> written; a failed write goes
// back to absent so a later READ may try again. The "written" bit also caches the answer
// of the SEEK_HOLE presence check, so each chunk costs at most one lseek per object.
//
// Thread-safety: thread-safe; the state map is guarded by an internal mutex held only for
// the state change. The fd, map and lease are immutable and shared: READs in flight keep
// the object (and so the fd) alive after CLOSE removed it from the engine's table.
#ifndef LAZYBLOB_CORE_CACHE_OBJECT_H_
#define LAZYBLOB_CORE_CACHE_OBJECT_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/chunk_source.h"
#include "core/unique_fd.h"

namespace lazyblob {

class CacheObject {
 public:
  enum class Claim {
    kPresent,  // already written: nothing to do
    kMine,     // the caller must write it and then call Finish()
    kBusy,     // another thread is writing it (only from TryClaim)
  };

  // `lease` is an opaque hold on the blob in the store (may be null).
  CacheObject(std::uint32_t object_id, std::shared_ptr<const UniqueFd> anon_fd,
              std::shared_ptr<const BlobMap> map, std::shared_ptr<void> lease)
      : object_id_(object_id),
        fd_(std::move(anon_fd)),
        map_(std::move(map)),
        lease_(std::move(lease)),
        state_(map_->extents.size(), kAbsent) {}

  std::uint32_t object_id() const { return object_id_; }
  const std::shared_ptr<const UniqueFd>& fd() const { return fd_; }
  const BlobMap& map() const { return *map_; }

  // Non-blocking claim of chunk `i`.
  Claim TryClaim(std::size_t i) {
    std::lock_guard lock(mu_);
    return ClaimLocked(i);
  }

  // Claim of chunk `i` that waits while another thread writes it; never returns kBusy.
  Claim ClaimOrWait(std::size_t i) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return state_[i] != kWriting; });
    return ClaimLocked(i);
  }

  // Ends the caller's claim of chunk `i`: written or back to absent.
  void Finish(std::size_t i, bool written) {
    {
      std::lock_guard lock(mu_);
      state_[i] = written ? kWritten : kAbsent;
    }
    cv_.notify_all();
  }

  // Sizes the write-ahead window of a READ whose first chunk is `first`, the way the
  // kernel's readahead ramps up: a READ that starts inside or right at the end of the
  // previous window (a sequential reader caught up with it) gets twice that window, up to
  // `max_bytes`; any other READ gets `base_bytes`. Records the new window, which starts at
  // `window_begin` (the chunk after the READ's own), and returns its end (a chunk index).
  // Concurrent READs of one object only disturb the guess, never correctness.
  std::size_t NextWindow(std::size_t first, std::size_t window_begin, std::uint64_t base_bytes,
                         std::uint64_t max_bytes) {
    std::lock_guard lock(mu_);
    const bool sequential = window_bytes_ > 0 && first >= window_begin_ && first <= window_end_;
    window_bytes_ = sequential ? std::min(window_bytes_ * 2, max_bytes) : base_bytes;
    window_begin_ = window_begin;
    window_end_ = window_begin;
    std::uint64_t bytes = 0;
    while (window_end_ < map_->extents.size() && bytes < window_bytes_) {
      bytes += map_->extents[window_end_++].length;
    }
    return window_end_;
  }

  void MarkClosed() { closed_.store(true, std::memory_order_relaxed); }
  bool closed() const { return closed_.load(std::memory_order_relaxed); }

 private:
  enum : std::uint8_t { kAbsent = 0, kWriting = 1, kWritten = 2 };

  Claim ClaimLocked(std::size_t i) {
    if (state_[i] == kWritten) return Claim::kPresent;
    if (state_[i] == kWriting) return Claim::kBusy;
    state_[i] = kWriting;
    return Claim::kMine;
  }

  const std::uint32_t object_id_;
  const std::shared_ptr<const UniqueFd> fd_;
  const std::shared_ptr<const BlobMap> map_;
  const std::shared_ptr<void> lease_;
  std::atomic<bool> closed_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::uint8_t> state_;  // guarded by mu_
  // The last write-ahead window: chunks [window_begin_, window_end_), its size target.
  std::size_t window_begin_ = 0, window_end_ = 0;  // guarded by mu_
  std::uint64_t window_bytes_ = 0;                 // guarded by mu_
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_CACHE_OBJECT_H_
