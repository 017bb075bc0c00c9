// ReadWatch: the worker's ReadObserver (core/request_engine.h). For each READ it
//  - fails it at once when it overlaps a range the supervisor poisoned (a READ that was in
//    flight at every one of the last crashes; tools/lazyblobd_read_journal.h), logging the
//    blob and range;
//  - records it in the supervisor's ReadJournal until it is answered;
//  - applies the test failpoint, if one is set;
// and records the blobs it has open in the journal, so that the supervisor can hold their
// leases when this worker dies. The leases the supervisor took for the previous worker are
// handed to this one: each is kept until the kernel reopens its blob here (at that object's
// next READ, KERNEL_FACTS (l)) and the engine holds its own, so `lazyblob rm` of a mounted
// blob stays refused across restarts. A mount unmounted while idle after a restart sends no
// CLOSE: its inherited lease is kept until the supervisor ends (rm says busy, never EIO).
//
// Failpoints are compiled in and off unless LAZYBLOB_FAILPOINT is set when the worker
// starts (ParseFailpoint):
//  - crash_on_read:[BLOB:]OFFSET  every worker kills itself (SIGKILL) on a READ covering
//                                 OFFSET (of blob BLOB, if given);
//  - hold_read[:[BLOB:]OFFSET]    the first worker (not a restarted one) never answers a READ
//                                 (covering OFFSET): it stays taken until it is killed.
//
// Thread-safety: BeginRead/EndRead from any thread. Lifetimes: the journal is borrowed and
// must outlive the watch.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_READ_WATCH_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_READ_WATCH_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/mutex.h"
#include "core/request_engine.h"
#include "core/status.h"
#include "store/blob_lease.h"
#include "tools/lazyblobd_read_journal.h"

namespace lazyblob {

inline constexpr const char* kFailpointEnv = "LAZYBLOB_FAILPOINT";

struct Failpoint {
  enum class Kind { kNone, kCrashOnRead, kHoldRead };
  Kind kind = Kind::kNone;
  std::optional<std::uint64_t> offset;  // the READ must cover it (unset: any READ)
  std::string blob_id;                  // the READ must be of this blob (empty: any)
};

// Parses a LAZYBLOB_FAILPOINT value ("" or null: none).
Result<Failpoint> ParseFailpoint(const char* spec);

class ReadWatch final : public ReadObserver {
 public:
  // `journal` may be null (no supervisor). `first_worker`: no worker died before this one.
  ReadWatch(ReadJournal* journal, std::vector<JournaledRead> poisoned, Failpoint failpoint,
            bool first_worker, std::vector<BlobLease> inherited_leases = {});

  bool BeginRead(std::uint32_t msg_id, std::string_view blob_id, std::uint64_t offset,
                 std::uint64_t length) override;
  void EndRead(std::uint32_t msg_id) override;
  void ObjectOpened(std::string_view blob_id) override;
  void ObjectClosed(std::string_view blob_id) override;

  // Inherited leases not yet replaced by the engine's own.
  std::size_t inherited_leases() const;

  // The READs the previous worker left unanswered: each one seen again (the kernel
  // re-delivers it after `restore`, same range) is logged as re-delivered and counted.
  void ExpectRedelivered(std::vector<JournaledRead> reads);
  std::uint64_t redelivered() const;

 private:
  ReadJournal* const journal_;
  const std::vector<JournaledRead> poisoned_;
  const Failpoint failpoint_;
  const bool first_worker_;
  mutable Mutex mu_;
  std::map<std::string, BlobLease, std::less<>> inherited_ LB_GUARDED_BY(mu_);
  std::vector<JournaledRead> expected_ LB_GUARDED_BY(mu_);
  std::uint64_t redelivered_ LB_GUARDED_BY(mu_) = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_READ_WATCH_H_
