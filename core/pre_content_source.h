// PreContentSource: the kernel side of a pre-content front end (fanotify FAN_PRE_ACCESS,
// Linux >= 6.14) as the PreContentEngine sees it, the way CacheDevice is for cachefiles.
// transport/FanotifySource is the real one; tests/core has a scripted double.
//
// The model: a reader of a marked file blocks until the source's owner answers an "access
// event" naming a byte range of that file. The answer is allow (the range must hold its
// bytes by then: an unfilled hole reads as zeros, with no error) or deny with an errno. The
// kernel finds the event an answer is for by the event's fd NUMBER only, and an event a
// process read and never answered stays pending after that process died. So a source
// records each event it hands out until it is answered (a journal that outlives the
// reading process), and a later reader first takes those "orphans" back (TakeOrphans).
//
// Contract:
//  - Read() hands out events already recorded; Answer() writes the answer, then forgets the
//    record; the event's fd (if any) is closed only after that, by its owner (so its number
//    cannot be reused by a new event while a record still names it).
//  - TakeOrphans() before the first Read(): fd numbers of orphans may collide with new
//    events' numbers once new events are read.
//
// Thread-safety: Read/TakeOrphans from one dispatcher thread; Answer, AnswerUnrecorded,
// Mark and Unmark from any thread (each is one syscall or one record update).
#ifndef LAZYBLOB_CORE_PRE_CONTENT_SOURCE_H_
#define LAZYBLOB_CORE_PRE_CONTENT_SOURCE_H_

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

// One access waiting for an answer.
struct AccessEvent {
  // The event's own fd (I/O through it raises no event); invalid for an orphan, whose fd
  // closed with the process that read it.
  UniqueFd fd;
  int fd_number = -1;  // what the answer names: fd.get() for a live event
  // The accessed file's identity (st_dev, st_ino).
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  // The range asked for: [offset, offset + count). Whole pages; may pass the end of file.
  std::uint64_t offset = 0;
  std::uint64_t count = 0;
  std::uint32_t record = 0;  // the source's bookkeeping (journal slot); opaque to callers
};

// What one Read() returned.
struct AccessBatch {
  std::vector<AccessEvent> events;
  std::size_t rejected = 0;  // malformed events, already denied by the source
  Status first_rejection;    // why the first one was rejected
};

// Events a previous reader took and did not answer.
struct AccessOrphans {
  std::vector<AccessEvent> events;  // recorded: file and range known
  // The previous reader may have taken events it had not recorded yet (it died between the
  // read and the record): their file, range and number are unknown.
  bool unrecorded_possible = false;
};

class PreContentSource {
 public:
  virtual ~PreContentSource() = default;

  // Borrowed fd that polls POLLIN while an unread event is queued.
  virtual int poll_fd() const = 0;

  // Takes the orphans left by earlier readers (see the contract above).
  virtual Result<AccessOrphans> TakeOrphans() = 0;

  // Reads up to `max_events` (>= 1) events; an empty batch when none is queued.
  virtual Result<AccessBatch> Read(std::size_t max_events) = 0;

  // Answers `event`: allow when `error` is 0, else deny with `error` (EIO, ...). Then the
  // event's record is gone; the caller closes event.fd afterwards.
  virtual Status Answer(const AccessEvent& event, int error) = 0;

  // Answers every event an earlier reader may have taken without recording it, by trying
  // every fd number it could have had: allow when `error` is 0 (only when every marked
  // file is complete), else deny. Only before the first Read().
  virtual Status AnswerUnrecorded(int error) = 0;

  // Adds / removes the pre-content mark of the file open as `file_fd` (borrowed). An fd
  // opened before its file was marked raises no event: fill through such an fd.
  virtual Status Mark(int file_fd) = 0;
  virtual Status Unmark(int file_fd) = 0;
};

// Move-only owner of one AccessEvent that still needs its answer: answered exactly once, by
// Allow()/Deny() or, if dropped unanswered (error path, exception, shutdown), by the
// destructor with EIO, so a reader neither hangs nor sees an unfilled hole.
//
// Thread-safety: one owner at a time; the source must outlive it.
class PendingAccess {
 public:
  PendingAccess() = default;
  PendingAccess(PreContentSource* source, AccessEvent event)
      : source_(source), event_(std::move(event)) {}
  PendingAccess(PendingAccess&& o) noexcept
      : source_(std::exchange(o.source_, nullptr)), event_(std::move(o.event_)) {}
  PendingAccess& operator=(PendingAccess&& o) noexcept {
    if (this != &o) {
      DenyIfUnanswered();
      source_ = std::exchange(o.source_, nullptr);
      event_ = std::move(o.event_);
    }
    return *this;
  }
  PendingAccess(const PendingAccess&) = delete;
  PendingAccess& operator=(const PendingAccess&) = delete;
  ~PendingAccess() { DenyIfUnanswered(); }

  const AccessEvent& event() const { return event_; }
  bool answered() const { return source_ == nullptr; }

  // The range must be filled. At most once (kInternal after).
  Status Allow() { return Answer(0); }
  Status Deny(int error) { return Answer(error == 0 ? EIO : error); }

 private:
  Status Answer(int error) {
    PreContentSource* s = std::exchange(source_, nullptr);
    if (s == nullptr) return Internal("access event answered twice");
    Status st = s->Answer(event_, error);
    event_.fd.reset();  // only now: the record naming this number is gone
    return st;
  }
  void DenyIfUnanswered() {
    if (source_ != nullptr) Answer(EIO).IgnoreError();
  }

  PreContentSource* source_ = nullptr;
  AccessEvent event_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_PRE_CONTENT_SOURCE_H_
