// FileTrace: the access-trace state of one opened cache file, for one of two jobs:
//  - recording (no record existed at OPEN): the chunks demanded (and written ahead with
//    them) during the first `record_window` after OPEN, each once, in first-access order,
//    until the record is taken (once: when a demand arrives after the window, or at CLOSE);
//  - replaying (a record existed): the record's chunks in its order, which ones replay
//    wrote, which ones demand asked for, and how many demands went off the record (replay
//    stops after enough of them: the container reads elsewhere).
//
// Thread-safety: thread-safe (one internal mutex, held for bookkeeping only). Owned by its
// CacheFile through a shared pointer.
#ifndef LAZYBLOB_CORE_FILE_TRACE_H_
#define LAZYBLOB_CORE_FILE_TRACE_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/access_trace.h"
#include "core/chunk_source.h"
#include "core/mutex.h"

namespace lazyblob {

class FileTrace {
 public:
  using Clock = std::chrono::steady_clock;

  // Records the demands of the first `window` after `opened`.
  static std::shared_ptr<FileTrace> Recording(std::shared_ptr<const BlobMap> map,
                                              Clock::time_point opened,
                                              std::chrono::milliseconds window);
  // Replays `order` (chunk indexes of `map`, from AccessTrace::ChunksOf).
  static std::shared_ptr<FileTrace> Replaying(std::shared_ptr<const BlobMap> map,
                                              std::vector<std::size_t> order);

  bool replaying() const { return replaying_; }
  // A replaying trace: true until its replay ended (EndReplay).
  bool replay_running() const { return replay_running_.load(std::memory_order_acquire); }
  void EndReplay() { replay_running_.store(false, std::memory_order_release); }
  // A recording trace whose window is still open at `now` (and whose record is not taken).
  bool Recording(Clock::time_point now) const LB_EXCLUDES(mu_);
  const std::vector<std::size_t>& replay_order() const { return order_; }

  struct Demand {
    bool prefetch_hit = false;  // every demanded chunk had been written by replay
    bool record_due = false;    // the recording window is over: take the record now
  };
  // A demand fill is about to run at `now`: chunks [first, demand_end) demanded, then
  // [demand_end, end) written ahead of them. A recording takes all of [first, end): the
  // cachefiles kernel never asks for a range written ahead, so a later read of it would go
  // unseen, and a replay that skipped it would leave that read a miss.
  Demand NoteDemand(std::size_t first, std::size_t demand_end, std::size_t end,
                    Clock::time_point now) LB_EXCLUDES(mu_);

  // The record, once: empty when nothing was recorded or it was taken already.
  std::optional<AccessTrace> TakeRecord() LB_EXCLUDES(mu_);

  // Replay wrote chunk `i`.
  void Replayed(std::size_t i) LB_EXCLUDES(mu_);
  // Demands that went off the record since replay began.
  int off_record_demands() const LB_EXCLUDES(mu_);
  // Bytes replay wrote that no demand asked for (so far).
  std::uint64_t UnusedReplayBytes() const LB_EXCLUDES(mu_);

 private:
  FileTrace(std::shared_ptr<const BlobMap> map, bool replaying);

  const std::shared_ptr<const BlobMap> map_;
  const bool replaying_;
  std::atomic<bool> replay_running_{true};
  Clock::time_point record_end_;
  std::vector<std::size_t> order_;  // replay: the record's chunks in order

  mutable Mutex mu_;
  // Per chunk: bit 0 demanded, bit 1 in the record (replay) / recorded, bit 2 replayed.
  std::vector<std::uint8_t> flags_ LB_GUARDED_BY(mu_);
  std::vector<std::uint64_t> recorded_ LB_GUARDED_BY(mu_);  // blocks, first access first
  bool taken_ LB_GUARDED_BY(mu_) = false;
  int off_record_ LB_GUARDED_BY(mu_) = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_FILE_TRACE_H_
