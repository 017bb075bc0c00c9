// Decoded cachefiles on-demand messages (see ../shared/PROTOCOL.md "Messages").
// transport/ turns raw device bytes into these; core/'s request engine consumes them.
//
// Thread-safety: plain values. An OpenMessage owns the anon fd the kernel installed.
#ifndef LAZYBLOB_CORE_CACHE_MESSAGES_H_
#define LAZYBLOB_CORE_CACHE_MESSAGES_H_

#include <cstdint>
#include <string>
#include <variant>

#include "core/unique_fd.h"

namespace lazyblob {

// Wire opcodes; values are the kernel's (include/uapi/linux/cachefiles.h).
enum class CacheOpcode : std::uint32_t { kOpen = 0, kClose = 1, kRead = 2 };

struct OpenMessage {
  std::uint32_t msg_id = 0;
  std::uint32_t object_id = 0;
  std::string volume_key;  // without the trailing NUL, e.g. "erofs,myfsid"
  std::string cookie_key;  // the blob id (fsid, or device tag for extra devices)
  std::uint32_t flags = 0;
  UniqueFd anon_fd;  // owned: closed on every path
};

struct ReadMessage {
  std::uint32_t msg_id = 0;
  std::uint32_t object_id = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

struct CloseMessage {
  std::uint32_t msg_id = 0;
  std::uint32_t object_id = 0;
};

// A message whose header names a request (OPEN or READ, with its msg_id and object_id) but
// whose payload does not decode. The kernel still waits for its answer: the engine fails
// it (copen with -EINVAL; a READ completed without data, so the reader gets EIO). Any fd
// the message carried is already closed.
struct RejectedMessage {
  CacheOpcode opcode = CacheOpcode::kOpen;
  std::uint32_t msg_id = 0;
  std::uint32_t object_id = 0;
  std::string reason;
};

using CacheMessage = std::variant<OpenMessage, ReadMessage, CloseMessage, RejectedMessage>;

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_CACHE_MESSAGES_H_
