// FanotifyEventDecoder: turns the bytes of one read() of a fanotify group fd into events,
// strictly (include/uapi/linux/fanotify.h, fs/notify/fanotify/fanotify_user.c, 6.14+).
//
// One read() returns zero or more whole events, back to back. Each starts with a 24-byte
// fanotify_event_metadata {event_len, vers = 3, reserved, metadata_len = 24, mask, fd, pid}
// followed by info records {u8 type, u8 pad, u16 len, ...} filling event_len exactly.
// Rules enforced:
// - framing: 24 <= event_len <= bytes left. A buffer that cannot be framed further
//   (a short tail or a bad event_len) stops decoding: `framing_broken` is set and the
//   unframed rest counts as one rejected event. Fds in unframed bytes cannot be seen.
// - vers == 3 and metadata_len == 24; info records are at least 4 bytes and fit.
// - FAN_PRE_ACCESS events carry exactly one range record {hdr(type 6, pad 0, len 24),
//   u32 pad = 0, u64 offset, u64 count} with offset + count <= INT64_MAX, and a fd >= 0.
//   A range record on any other event is rejected. Records of other types are skipped
//   (a later kernel may add some), but only when well-formed.
// - FAN_Q_OVERFLOW events have fd == FAN_NOFD.
// Nothing is read outside `bytes`.
//
// Fds: every framed event's fd (when >= 0) is handed to `adopt` before any other check,
// so a rejected event's fd is owned too and closes with its RejectedFanotifyEvent. For
// bytes read from the kernel, adopt = AdoptKernelFd (the fd is installed in this
// process). Tests and the fuzzer pass their own (their fd numbers are made up).
//
// Thread-safety: stateless; call from any thread.
#ifndef LAZYBLOB_TRANSPORT_FANOTIFY_EVENT_DECODER_H_
#define LAZYBLOB_TRANSPORT_FANOTIFY_EVENT_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

inline constexpr std::size_t kFanotifyMetadataSize = 24;
inline constexpr std::size_t kFanotifyRangeRecordSize = 24;
inline constexpr std::uint64_t kFanotifyPreAccess = 0x00100000;      // FAN_PRE_ACCESS (6.14)
inline constexpr std::uint64_t kFanotifyQueueOverflow = 0x00004000;  // FAN_Q_OVERFLOW
// Events whose process waits for an answer: FAN_OPEN_PERM, FAN_ACCESS_PERM,
// FAN_OPEN_EXEC_PERM, FAN_PRE_ACCESS.
inline constexpr std::uint64_t kFanotifyPermissionEvents =
    0x00010000 | 0x00020000 | 0x00040000 | kFanotifyPreAccess;

// The byte range a FAN_PRE_ACCESS event asks to be filled: [offset, offset + count).
struct FanotifyRange {
  std::uint64_t offset = 0;
  std::uint64_t count = 0;

  std::uint64_t end() const { return offset + count; }
  friend bool operator==(const FanotifyRange&, const FanotifyRange&) = default;
};

// One decoded event.
struct FanotifyEvent {
  // The kernel-opened fd of the accessed file (opened with the group's event flags and
  // FMODE_NONOTIFY: I/O through it raises no event). Invalid for FAN_Q_OVERFLOW.
  UniqueFd fd;
  std::int32_t pid = 0;  // of the accessing process (a tid with FAN_REPORT_TID)
  std::uint64_t mask = 0;
  std::optional<FanotifyRange> range;  // set exactly for FAN_PRE_ACCESS events

  bool pre_access() const { return (mask & kFanotifyPreAccess) != 0; }
  // A permission event: the accessing process waits until the group answers it.
  bool needs_answer() const { return (mask & kFanotifyPermissionEvents) != 0; }
};

// An event that failed a rule. If `fd` is valid and `needs_answer`, the kernel still
// waits for an answer: the caller denies it (FanotifyGroup does, with EIO) before `fd`
// closes.
struct RejectedFanotifyEvent {
  UniqueFd fd;
  bool needs_answer = false;
  Status why;
};

struct FanotifyDecodeResult {
  std::vector<FanotifyEvent> events;
  std::vector<RejectedFanotifyEvent> rejected;
  bool framing_broken = false;
};

// Takes ownership of a fd number found in an event.
using FanotifyFdAdopter = UniqueFd (*)(std::int32_t fd);

class FanotifyEventDecoder {
 public:
  static FanotifyDecodeResult Decode(std::span<const std::byte> bytes, FanotifyFdAdopter adopt);

  // For bytes that came from the kernel: the fd is open in this process; own it.
  static UniqueFd AdoptKernelFd(std::int32_t fd) { return UniqueFd(fd); }
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_FANOTIFY_EVENT_DECODER_H_
