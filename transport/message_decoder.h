// MessageDecoder: turns the raw bytes of one cachefiles on-demand message (one read() of
// /dev/cachefiles, or one frame of the simulator) into core's CacheMessage, strictly.
//
// Rules (include/uapi/linux/cachefiles.h, fs/cachefiles/ondemand.c): the bytes read equal
// the header's len; 16 <= len <= 1024 (CACHEFILES_MSG_MAX_SIZE); the opcode is OPEN, CLOSE
// or READ. OPEN: a 16-byte payload header, then volume_key_size + cookie_key_size bytes
// filling the message exactly; the volume key is NUL-terminated (its size counts the NUL)
// with no other NUL; the cookie key is not empty. READ: exactly 16 payload bytes. CLOSE:
// none. Anything else is kMalformed. Nothing is read outside `bytes`.
//
// A message that breaks a rule but whose 16-byte header has a len equal to the bytes read
// and an OPEN or READ opcode still names a request the kernel waits for: it decodes to a
// RejectedMessage (msg_id, object_id, why) so the engine can fail it. Anything else is
// kMalformed.
//
// The anon fd of an OPEN is owned by the decoder from the call on: it moves into the
// OpenMessage, or is closed when the message is rejected. A fd passed with a non-OPEN
// message is closed too, and the message rejected.
//
// Thread-safety: stateless; call from any thread.
#ifndef LAZYBLOB_TRANSPORT_MESSAGE_DECODER_H_
#define LAZYBLOB_TRANSPORT_MESSAGE_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/cache_messages.h"
#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

inline constexpr std::size_t kMessageHeaderSize = 16;
inline constexpr std::size_t kOpenPayloadHeaderSize = 16;
inline constexpr std::size_t kReadPayloadSize = 16;
inline constexpr std::size_t kMaxMessageSize = 1024;

class MessageDecoder {
 public:
  // Decodes `bytes`. `anon_fd` is the OPEN's fd (invalid for other messages); it is always
  // consumed.
  static Result<CacheMessage> Decode(std::span<const std::byte> bytes, UniqueFd anon_fd);

  // For /dev/cachefiles, where the kernel installs the anon fd in the reading process and
  // writes its number into the OPEN payload: returns an owner of that fd when `bytes` holds
  // an OPEN header with its payload header (so a rejected OPEN still closes the fd), else an
  // invalid UniqueFd. Only for bytes that came from the kernel: the number is trusted.
  static UniqueFd TakeKernelOpenFd(std::span<const std::byte> bytes);
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_MESSAGE_DECODER_H_
