// The fanotify pre-content ABI (Linux >= 6.14), for headers that predate it.
//
// Debian 12's <linux/fanotify.h> (linux-libc-dev 6.1) lacks FAN_PRE_ACCESS, the range info
// record and FAN_DENY_ERRNO. The values below are copied from the 6.14+
// include/uapi/linux/fanotify.h; each is defined only when the system header did not, and
// every struct layout is pinned with static_asserts, so a newer header that disagrees
// fails the build instead of the kernel's parse.
//
// Internal to transport/: only the fanotify group and its decoder include it.
#ifndef LAZYBLOB_TRANSPORT_FANOTIFY_UAPI_H_
#define LAZYBLOB_TRANSPORT_FANOTIFY_UAPI_H_

#include <linux/fanotify.h>

#include <cstddef>
#include <cstdint>

#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000ULL  // pre-content access hook (6.14)
#endif
#ifndef FAN_CLASS_PRE_CONTENT
#define FAN_CLASS_PRE_CONTENT 0x00000008
#endif
#ifndef FAN_UNLIMITED_QUEUE
#define FAN_UNLIMITED_QUEUE 0x00000010
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6
#endif
#ifndef FAN_ERRNO_BITS
#define FAN_ERRNO_BITS 8
#define FAN_ERRNO_SHIFT (32 - FAN_ERRNO_BITS)
#define FAN_ERRNO_MASK ((1 << FAN_ERRNO_BITS) - 1)
#define FAN_DENY_ERRNO(err) (FAN_DENY | ((((__u32)(err)) & FAN_ERRNO_MASK) << FAN_ERRNO_SHIFT))
#endif
#ifndef FAN_NOFD
#define FAN_NOFD -1
#endif

namespace lazyblob::fanotify_abi {

// struct fanotify_event_metadata (FANOTIFY_METADATA_VERSION 3): 24 bytes.
struct EventMetadata {
  std::uint32_t event_len;
  std::uint8_t vers;
  std::uint8_t reserved;
  std::uint16_t metadata_len;
  alignas(8) std::uint64_t mask;
  std::int32_t fd;
  std::int32_t pid;
};
static_assert(sizeof(EventMetadata) == 24);
static_assert(offsetof(EventMetadata, mask) == 8);
static_assert(offsetof(EventMetadata, fd) == 16);
static_assert(sizeof(EventMetadata) == sizeof(fanotify_event_metadata));
inline constexpr std::uint8_t kMetadataVersion = 3;

// struct fanotify_event_info_header: 4 bytes, precedes every info record.
struct InfoHeader {
  std::uint8_t info_type;
  std::uint8_t pad;
  std::uint16_t len;  // of the whole record, header included
};
static_assert(sizeof(InfoHeader) == 4);

// struct fanotify_event_info_range (6.14): {hdr, u32 pad, u64 offset, u64 count}: 24 bytes.
struct InfoRange {
  InfoHeader hdr;
  std::uint32_t pad;
  std::uint64_t offset;
  std::uint64_t count;
};
static_assert(sizeof(InfoRange) == 24);
static_assert(offsetof(InfoRange, offset) == 8);
static_assert(offsetof(InfoRange, count) == 16);

// struct fanotify_response: written to the group fd to answer a permission event.
struct Response {
  std::int32_t fd;
  std::uint32_t response;
};
static_assert(sizeof(Response) == sizeof(fanotify_response));

inline constexpr std::uint64_t kPreAccess = FAN_PRE_ACCESS;
inline constexpr std::uint8_t kInfoTypeRange = FAN_EVENT_INFO_TYPE_RANGE;
inline constexpr std::uint32_t DenyWithErrno(int err) {
  return static_cast<std::uint32_t>(FAN_DENY_ERRNO(err));
}

}  // namespace lazyblob::fanotify_abi

#endif  // LAZYBLOB_TRANSPORT_FANOTIFY_UAPI_H_
