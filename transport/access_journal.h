// AccessJournal: a record, in memory shared with the supervisor, of every fanotify event a
// worker has read and not yet answered, so that the next worker can answer the events of
// one that died (transport/FANOTIFY_FACTS.md "Lifetime": such an event stays pending, is
// never queued again, and can only be answered by writing its fd NUMBER to the group).
//
// The region is an anonymous MAP_SHARED mapping made by the supervisor before it forks:
// every worker it forks shares it, and it outlives each of them. Layout (native endianness,
// one host): a header {u64 magic "LBJRNL01", u32 slots, u32 reading, u32 sweep_fds} then
// `slots` records {u32 state (0 free, 1 recorded), i32 fd, u64 dev, u64 ino, u64 offset,
// u64 count}. Fields are written before `state` is set (release) and read after it
// (acquire); the reader's process may die between any two stores.
//
// The protocol a reader follows (FanotifySource):
//   BeginRead(sweep_fds)   -- before read() of the group: "events may be in flight"
//   read() of the group
//   Record(...) per event  -- before any work on it
//   EndRead()              -- every event of that read() is recorded
//   ... fill ...
//   answer by fd number, then Clear(slot), then close the event fd
// A recovering worker finds the recorded slots (Recorded()) and, if `reading` is still set,
// knows events may have been read without a record (ReadInProgress()): it then answers
// every fd number below `sweep_fds` (the dead reader's fd limit) after making every marked
// file complete.
//
// Thread-safety: Record/Clear/free_slots from any thread (the free list is guarded);
// BeginRead/EndRead from the one reading thread; Recorded/ReadInProgress/Adopt before any
// Record. One reading process at a time.
#ifndef LAZYBLOB_TRANSPORT_ACCESS_JOURNAL_H_
#define LAZYBLOB_TRANSPORT_ACCESS_JOURNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"

namespace lazyblob {

class AccessJournal {
 public:
  static constexpr std::uint32_t kDefaultSlots = 8192;

  struct Entry {
    std::uint32_t slot = 0;
    int fd = -1;
    std::uint64_t dev = 0, ino = 0, offset = 0, count = 0;
  };

  // Maps a fresh, empty journal of `slots` records (anonymous, shared across fork()).
  static Result<std::unique_ptr<AccessJournal>> Create(std::uint32_t slots = kDefaultSlots);
  ~AccessJournal();
  AccessJournal(const AccessJournal&) = delete;
  AccessJournal& operator=(const AccessJournal&) = delete;

  std::uint32_t slots() const;

  // Recovery (a new worker, before it reads the group): the records a dead reader left,
  // and whether it died inside a read (ReadInProgress). Adopt() then rebuilds this
  // process's free list from the slots not recorded.
  std::vector<Entry> Recorded() const;
  bool ReadInProgress() const;
  std::uint32_t sweep_fds() const;
  void Adopt() LB_EXCLUDES(mu_);

  void BeginRead(std::uint32_t sweep_fds);
  void EndRead();

  // Records one event; returns its slot. kBusy when no slot is free (never happens when
  // reads are capped at free_slots()).
  Result<std::uint32_t> Record(int fd, std::uint64_t dev, std::uint64_t ino, std::uint64_t offset,
                               std::uint64_t count) LB_EXCLUDES(mu_);
  // Forgets slot `slot` (after its answer was written). Clearing a free slot is a no-op.
  void Clear(std::uint32_t slot) LB_EXCLUDES(mu_);
  std::size_t free_slots() const LB_EXCLUDES(mu_);

 private:
  struct Header;
  struct Slot;

  AccessJournal(void* region, std::size_t bytes);
  Header* header() const;
  Slot* slot(std::uint32_t i) const;

  void* const region_;
  const std::size_t bytes_;
  mutable Mutex mu_;
  std::vector<std::uint32_t> free_ LB_GUARDED_BY(mu_);
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_ACCESS_JOURNAL_H_
