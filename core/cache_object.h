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
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_CACHE_OBJECT_H_
