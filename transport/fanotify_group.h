// FanotifyGroup: a fanotify pre-content group (Linux >= 6.14), the kernel side of the
// fanotify front end (transport/FANOTIFY_FACTS.md has what the kernel really does).
//
// Open() calls fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC [| FAN_NONBLOCK]
// [| FAN_UNLIMITED_QUEUE], O_RDWR | O_LARGEFILE | O_CLOEXEC): event fds are opened
// read-write, so a daemon fills a range by pwrite() into the event fd, which raises no
// event itself. MarkPreAccess() adds a FAN_PRE_ACCESS inode mark on one file: every read
// (and write) of that file, through any fd opened after the mark, then waits for an
// answer. A file opened before its mark raises no pre-content event for that open file's
// whole life (FANOTIFY_FACTS.md), so mark before the EROFS mount opens the file.
//
// Read() decodes one read() of the group into PendingFanotifyEvent owners, which answer
// exactly once (deny EIO when dropped). Malformed events are counted, denied with EIO
// when the kernel waits for them, and their fds closed.
//
// Closing the group fd makes the kernel ALLOW every pending event (fanotify_release):
// readers then see unfilled holes as zeros. The group fd must therefore outlive any
// worker: a supervisor holds it (as it holds /dev/cachefiles) and passes dups (SendFds);
// Adopt() wraps such a dup.
//
// Thread-safety: Read() from one thread at a time; Mark/Unmark/Respond from any thread
// (each is one syscall; the kernel serializes them).
#ifndef LAZYBLOB_TRANSPORT_FANOTIFY_GROUP_H_
#define LAZYBLOB_TRANSPORT_FANOTIFY_GROUP_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"
#include "transport/pending_fanotify_event.h"

namespace lazyblob {

struct FanotifyGroupOptions {
  // FAN_NONBLOCK: Read() returns an empty batch when nothing is queued instead of
  // blocking (poll fd() for POLLIN). Default true.
  bool nonblocking = true;
  // FAN_UNLIMITED_QUEUE. Default true: on a bounded queue (fs.fanotify.max_queued_events,
  // 16384 by default) a permission event that does not fit is not queued and the kernel
  // lets the access proceed unasked (fanotify_handle_event): holes would read as zeros.
  bool unlimited_queue = true;
  // Bytes per read() of the group; a FAN_PRE_ACCESS event takes 48. Default 64 KiB.
  std::size_t read_buffer_bytes = 64 * 1024;

  Status Validate() const;
};

// One read() of the group.
struct FanotifyBatch {
  std::vector<PendingFanotifyEvent> events;
  std::size_t rejected = 0;  // malformed events (answered EIO when needed, fds closed)
  Status first_rejection;    // why the first one was rejected (OK when none was)
};

class FanotifyGroup {
 public:
  static Result<std::unique_ptr<FanotifyGroup>> Open(const FanotifyGroupOptions& options = {});
  // Wraps an existing pre-content group fd (a dup passed by a supervisor). `options` must
  // describe how it was opened; only read_buffer_bytes is used.
  static Result<std::unique_ptr<FanotifyGroup>> Adopt(UniqueFd group_fd,
                                                      const FanotifyGroupOptions& options = {});

  // Whether this kernel and the filesystem holding `scratch_dir` support pre-content
  // events: opens a group, marks a temporary file in `scratch_dir` and removes it.
  // kUnsupported / kPermissionDenied with one line naming what is missing.
  static Status ProbeSupport(const std::string& scratch_dir);

  // The errnos a pre-content group may deny with (6.14 fanotify_user.c).
  static bool IsDenyErrno(int err);

  FanotifyGroup(const FanotifyGroup&) = delete;
  FanotifyGroup& operator=(const FanotifyGroup&) = delete;

  // Borrowed group fd: poll it for POLLIN, or dup it to hand it over.
  int fd() const { return fd_.get(); }

  // Adds / removes the FAN_PRE_ACCESS mark of one regular file, by path (symlinks are not
  // followed) or by an open fd of it (borrowed). Unmarking an unmarked file: kNotFound.
  Status MarkPreAccess(const std::string& path);
  Status MarkPreAccess(int file_fd);
  Status UnmarkPreAccess(const std::string& path);
  Status UnmarkPreAccess(int file_fd);

  // One read() of the group. Empty when nothing is queued (nonblocking groups); a blocking
  // group waits for at least one event. Errors are the group's own (e.g. EMFILE: the
  // kernel could not install an event fd and denied that event).
  Result<FanotifyBatch> Read();
  // The same, reading at most `max_bytes` (whole events only: a pre-content event takes
  // kFanotifyMetadataSize + kFanotifyRangeRecordSize = 48 bytes; below one event the kernel
  // fails with EINVAL). Caps what one read() may take, e.g. to the free journal records.
  Result<FanotifyBatch> Read(std::size_t max_bytes);

  // Answers the pending event whose fd number is `event_fd` (borrowed). kNotFound when the
  // group has no such pending event (already answered, or never read).
  Status Allow(int event_fd);
  // `err` must satisfy IsDenyErrno (else kInvalidArgument, nothing written).
  Status Deny(int event_fd, int err);

 private:
  FanotifyGroup(UniqueFd fd, std::size_t read_buffer_bytes)
      : fd_(std::move(fd)), read_buffer_bytes_(read_buffer_bytes) {}
  Status Respond(int event_fd, std::uint32_t response);
  Status Mark(unsigned int flags, int dirfd, const char* path);

  UniqueFd fd_;
  std::size_t read_buffer_bytes_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_FANOTIFY_GROUP_H_
