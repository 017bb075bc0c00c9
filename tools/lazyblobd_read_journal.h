// ReadJournal: the READs a worker has begun and not yet answered, and the blobs it has open,
// kept in a shared anonymous mapping that the supervisor creates before it forks workers. A
// worker that dies (kill -9, a crash in a decoder) leaves its entries behind; the supervisor
// reads them after waitpid and learns which READs were in flight and which blobs were open
// (it then holds their leases across the restart: after `restore` the kernel reopens an
// idle object only at its next READ, KERNEL_FACTS (l)).
//
// CrashTracker: the supervisor's count, per READ range, of the worker deaths it was in
// flight for. A range in flight at `crash_limit` deaths within `window` is poisoned: the
// next workers fail READs that overlap it (complete them without data, the reader gets
// EIO) instead of dying on them again. A READ served in parallel with the one that kills
// the worker is counted too; it is poisoned only if it is still unanswered at every one of
// those deaths.
//
// Thread-safety: ReadJournal::Begin/End are thread-safe within the worker. Snapshot/Clear
// run in the supervisor while no worker lives. CrashTracker is single-threaded.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_READ_JOURNAL_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_READ_JOURNAL_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"

namespace lazyblob {

// One READ: its blob and byte range.
struct JournaledRead {
  std::string blob_id;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;

  bool Overlaps(std::string_view blob, std::uint64_t off, std::uint64_t len) const;
  // "blob 'ID' [OFFSET, +LENGTH)" for logs.
  std::string Describe() const;
  bool operator==(const JournaledRead&) const = default;
};

class ReadJournal {
 public:
  // Room for `slots` READs in flight at once and `blob_slots` open blobs; more are served
  // but not recorded.
  static Result<std::unique_ptr<ReadJournal>> Create(int slots, int blob_slots = 4096);
  ~ReadJournal();
  ReadJournal(const ReadJournal&) = delete;
  ReadJournal& operator=(const ReadJournal&) = delete;

  // Worker: records a READ; End(msg_id) forgets it. A READ that did not fit is ignored.
  void Begin(std::uint32_t msg_id, std::string_view blob_id, std::uint64_t offset,
             std::uint64_t length);
  void End(std::uint32_t msg_id);

  // Worker: one more / one fewer holder of `blob_id` open (counted: a blob may be open as
  // several objects). A blob that does not fit is not recorded.
  void BlobOpened(std::string_view blob_id);
  void BlobClosed(std::string_view blob_id);

  // Supervisor, with no worker alive: the READs recorded and not ended.
  std::vector<JournaledRead> Snapshot() const;
  // Supervisor, with no worker alive: the blobs open.
  std::vector<std::string> OpenBlobs() const;
  void Clear();

 private:
  struct Slot;
  struct BlobSlot;
  ReadJournal(Slot* slots, int count, BlobSlot* blobs, int blob_count, std::size_t bytes)
      : slots_(slots), count_(count), blobs_(blobs), blob_count_(blob_count), bytes_(bytes) {}

  Slot* const slots_;  // in the shared mapping
  const int count_;
  BlobSlot* const blobs_;  // in the shared mapping, after the READ slots
  const int blob_count_;
  const std::size_t bytes_;
  // Worker-local: blob id -> (slot, holders).
  std::map<std::string, std::pair<int, int>, std::less<>> open_ LB_GUARDED_BY(mu_);
  // Worker-local: which slot each READ took (the mapping only holds the data).
  Mutex mu_;
  std::vector<std::uint32_t> slot_msg_ LB_GUARDED_BY(mu_);
  std::vector<bool> slot_used_ LB_GUARDED_BY(mu_);
};

class CrashTracker {
 public:
  using Clock = std::chrono::steady_clock;
  // crash_limit 0: never poison.
  CrashTracker(int crash_limit, std::chrono::seconds window)
      : limit_(crash_limit), window_(window) {}

  // A worker died at `now` with `in_flight` unanswered. Returns the ranges poisoned by this
  // death (each also joins poisoned()).
  std::vector<JournaledRead> WorkerDied(const std::vector<JournaledRead>& in_flight,
                                        Clock::time_point now);
  const std::vector<JournaledRead>& poisoned() const { return poisoned_; }
  void set_limits(int crash_limit, std::chrono::seconds window) {
    limit_ = crash_limit;
    window_ = window;
  }

 private:
  struct Death {
    Clock::time_point when;
    std::vector<JournaledRead> in_flight;
  };
  int limit_;
  std::chrono::seconds window_;
  std::deque<Death> deaths_;  // within the window
  std::vector<JournaledRead> poisoned_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_READ_JOURNAL_H_
