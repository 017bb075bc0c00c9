#include "transport/fanotify_source.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "core/log.h"
#include "transport/fanotify_event_decoder.h"

namespace lazyblob {
namespace {
constexpr std::size_t kPreAccessEventBytes = kFanotifyMetadataSize + kFanotifyRangeRecordSize;
}  // namespace

Result<std::unique_ptr<FanotifySource>> FanotifySource::Create(std::unique_ptr<FanotifyGroup> group,
                                                               AccessJournal* journal,
                                                               std::uint32_t sweep_fds) {
  if (group == nullptr || journal == nullptr) {
    return InvalidArgument("FanotifySource needs a group and a journal");
  }
  return std::unique_ptr<FanotifySource>(
      new FanotifySource(std::move(group), journal, std::max<std::uint32_t>(sweep_fds, 1024)));
}

Result<AccessOrphans> FanotifySource::TakeOrphans() {
  AccessOrphans out;
  for (const AccessJournal::Entry& e : journal_->Recorded()) {
    AccessEvent a;
    a.fd_number = e.fd;
    a.dev = e.dev;
    a.ino = e.ino;
    a.offset = e.offset;
    a.count = e.count;
    a.record = e.slot;
    out.events.push_back(std::move(a));
  }
  out.unrecorded_possible = journal_->ReadInProgress();
  journal_->Adopt();
  return out;
}

Result<AccessBatch> FanotifySource::Read(std::size_t max_events) {
  AccessBatch out;
  const std::size_t room = std::min(max_events, journal_->free_slots());
  if (room == 0) return out;
  journal_->BeginRead(sweep_fds_);
  Result<FanotifyBatch> batch = group_->Read(room * kPreAccessEventBytes);
  if (!batch.ok()) {
    journal_->EndRead();
    return batch.status();
  }
  out.rejected = batch->rejected;
  out.first_rejection = batch->first_rejection;
  out.events.reserve(batch->events.size());
  for (PendingFanotifyEvent& pending : batch->events) {
    const FanotifyEvent& event = pending.event();
    if (!event.pre_access() || !event.range.has_value()) {
      // Nothing but FAN_PRE_ACCESS is marked; anything else waiting is refused.
      if (!pending.answered()) pending.Deny(EIO).IgnoreError();
      continue;
    }
    struct stat st {};
    Result<std::uint32_t> slot = IoError("no slot");
    if (::fstat(pending.fd(), &st) == 0) {
      slot = journal_->Record(pending.fd(), st.st_dev, st.st_ino, event.range->offset,
                              event.range->count);
    }
    if (!slot.ok()) {
      ++out.rejected;
      pending.Deny(EIO).IgnoreError();
      continue;
    }
    FanotifyEvent taken = std::move(pending).Abandon();
    AccessEvent a;
    a.fd = std::move(taken.fd);
    a.fd_number = a.fd.get();
    a.dev = st.st_dev;
    a.ino = st.st_ino;
    a.offset = taken.range->offset;
    a.count = taken.range->count;
    a.record = *slot;
    out.events.push_back(std::move(a));
  }
  journal_->EndRead();
  return out;
}

Status FanotifySource::Answer(const AccessEvent& event, int error) {
  Status s = error == 0 ? group_->Allow(event.fd_number) : group_->Deny(event.fd_number, error);
  // An orphan its reader answered just before it died: nothing is pending under that number
  // (and no new event can hold it: orphans are answered before any read).
  if (s.code() == StatusCode::kNotFound && !event.fd.valid()) s = Status();
  journal_->Clear(event.record);
  return s;
}

Status FanotifySource::AnswerUnrecorded(int error) {
  std::uint32_t fds = journal_->sweep_fds();
  if (fds == 0) fds = sweep_fds_;
  std::uint32_t answered = 0;
  for (std::uint32_t fd = 0; fd < fds; ++fd) {
    const int n = static_cast<int>(fd);
    Status s = error == 0 ? group_->Allow(n) : group_->Deny(n, error);
    if (s.ok()) ++answered;
  }
  journal_->EndRead();
  Log(LogLevel::kWarn, "answered " + std::to_string(answered) + " unrecorded event(s) (" +
                           (error == 0 ? std::string("allowed") : "denied") + ", fds 0.." +
                           std::to_string(fds - 1) + " tried)");
  return Status();
}

}  // namespace lazyblob
