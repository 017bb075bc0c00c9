// PendingFanotifyEvent: a move-only owner of one fanotify event that may still need an
// answer. A FAN_PRE_ACCESS event blocks the reading process until the group answers it,
// so every such event is answered exactly once: by Allow() / Deny() from the code that
// filled (or failed) its range, or by the destructor, which denies it with EIO so the
// reader gets an error instead of hanging or, worse, reading a hole as zeros.
//
// The answer is written before the event fd closes (the kernel finds the event by that fd
// number; closing first could let a new event reuse the number).
//
// Thread-safety: one owner at a time. The FanotifyGroup must outlive the owner.
#ifndef LAZYBLOB_TRANSPORT_PENDING_FANOTIFY_EVENT_H_
#define LAZYBLOB_TRANSPORT_PENDING_FANOTIFY_EVENT_H_

#include <utility>

#include "core/status.h"
#include "transport/fanotify_event_decoder.h"

namespace lazyblob {

class FanotifyGroup;

class PendingFanotifyEvent {
 public:
  PendingFanotifyEvent() = default;
  // `group` may be null only for events that need no answer.
  PendingFanotifyEvent(FanotifyGroup* group, FanotifyEvent event)
      : group_(event.needs_answer() ? group : nullptr), event_(std::move(event)) {}
  PendingFanotifyEvent(PendingFanotifyEvent&& o) noexcept
      : group_(std::exchange(o.group_, nullptr)), event_(std::move(o.event_)) {}
  PendingFanotifyEvent& operator=(PendingFanotifyEvent&& o) noexcept {
    if (this != &o) {
      DenyIfUnanswered();
      group_ = std::exchange(o.group_, nullptr);
      event_ = std::move(o.event_);
    }
    return *this;
  }
  PendingFanotifyEvent(const PendingFanotifyEvent&) = delete;
  PendingFanotifyEvent& operator=(const PendingFanotifyEvent&) = delete;
  ~PendingFanotifyEvent() { DenyIfUnanswered(); }

  const FanotifyEvent& event() const { return event_; }
  // Borrowed event fd, valid while this owner lives: pwrite the range's bytes through it
  // (an fd of the group's event flags, O_RDWR; its I/O raises no fanotify event).
  int fd() const { return event_.fd.get(); }
  bool answered() const { return group_ == nullptr; }

  // Lets the access proceed: the range must be filled by now. At most once.
  Status Allow();
  // Fails the access with `err`. Pre-content groups may use EIO, EPERM, EBUSY, ETXTBSY,
  // EAGAIN, ENOSPC or EDQUOT (fanotify_user.c); any other value is sent as EIO, since a
  // rejected answer would leave the reader blocked. At most once.
  Status Deny(int err);

  // Gives up the duty to answer and returns the event (its fd included). The kernel keeps
  // the event pending until someone writes an answer naming its fd number to the group,
  // or the group closes (which allows it). For hand-over and for tests; never on a path
  // that means "failed".
  FanotifyEvent Abandon() && {
    group_ = nullptr;
    return std::move(event_);
  }

 private:
  void DenyIfUnanswered();

  FanotifyGroup* group_ = nullptr;  // null once answered (or when no answer is needed)
  FanotifyEvent event_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_PENDING_FANOTIFY_EVENT_H_
