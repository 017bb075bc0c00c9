// FanotifySource: the PreContentSource over a real fanotify pre-content group
// (FanotifyGroup), with every event recorded in an AccessJournal from the moment it is read
// until its answer is written, so a worker's death never strands a reader
// (transport/FANOTIFY_FACTS.md "Lifetime").
//
// Read(): journal.BeginRead, one read() of the group capped at the free journal slots,
// fstat of each event fd (the file's dev/ino), one record per event, journal.EndRead.
// Answer(): the response names the event's fd number; the record is cleared after it and
// the caller closes the fd after that. An orphan whose answer finds no pending event
// (answered by the dead worker just before it died) counts as answered.
// AnswerUnrecorded(): writes the answer for every fd number below the dead reader's fd
// limit (recorded at BeginRead); numbers with no pending event fail with ENOENT, which is
// expected. Then clears the journal's "reading" flag.
//
// Thread-safety: as PreContentSource. Lifetimes: the journal is borrowed and must outlive
// the source.
#ifndef LAZYBLOB_TRANSPORT_FANOTIFY_SOURCE_H_
#define LAZYBLOB_TRANSPORT_FANOTIFY_SOURCE_H_

#include <cstdint>
#include <memory>

#include "core/pre_content_source.h"
#include "transport/access_journal.h"
#include "transport/fanotify_group.h"

namespace lazyblob {

class FanotifySource final : public PreContentSource {
 public:
  // `sweep_fds`: this process's fd limit (RLIMIT_NOFILE), recorded with each read so that a
  // successor knows which numbers an unrecorded event of ours could have.
  static Result<std::unique_ptr<FanotifySource>> Create(std::unique_ptr<FanotifyGroup> group,
                                                        AccessJournal* journal,
                                                        std::uint32_t sweep_fds);

  int poll_fd() const override { return group_->fd(); }
  Result<AccessOrphans> TakeOrphans() override;
  Result<AccessBatch> Read(std::size_t max_events) override;
  Status Answer(const AccessEvent& event, int error) override;
  Status AnswerUnrecorded(int error) override;
  Status Mark(int file_fd) override { return group_->MarkPreAccess(file_fd); }
  Status Unmark(int file_fd) override { return group_->UnmarkPreAccess(file_fd); }

  FanotifyGroup& group() { return *group_; }

 private:
  FanotifySource(std::unique_ptr<FanotifyGroup> group, AccessJournal* journal,
                 std::uint32_t sweep_fds)
      : group_(std::move(group)), journal_(journal), sweep_fds_(sweep_fds) {}

  std::unique_ptr<FanotifyGroup> group_;
  AccessJournal* const journal_;
  const std::uint32_t sweep_fds_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_FANOTIFY_SOURCE_H_
