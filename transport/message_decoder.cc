#include "transport/message_decoder.h"

#include <linux/cachefiles.h>

#include <cstring>
#include <string>

namespace lazyblob {
namespace {

static_assert(sizeof(cachefiles_msg) == kMessageHeaderSize);
static_assert(sizeof(cachefiles_open) == kOpenPayloadHeaderSize);
static_assert(sizeof(cachefiles_read) == kReadPayloadSize);
static_assert(CACHEFILES_MSG_MAX_SIZE == kMaxMessageSize);

template <typename T>
T Load(std::span<const std::byte> bytes, std::size_t at) {
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof v);
  return v;
}

Result<CacheMessage> DecodeOpen(const cachefiles_msg& h, std::span<const std::byte> payload,
                                UniqueFd fd) {
  if (payload.size() < kOpenPayloadHeaderSize) {
    return Malformed("OPEN payload of " + std::to_string(payload.size()) + " bytes");
  }
  auto open = Load<cachefiles_open>(payload, 0);
  std::span<const std::byte> keys = payload.subspan(kOpenPayloadHeaderSize);
  // 64-bit sum: no overflow with two u32 sizes.
  std::uint64_t keys_size = std::uint64_t{open.volume_key_size} + open.cookie_key_size;
  if (keys_size != keys.size()) {
    return Malformed("OPEN key sizes " + std::to_string(open.volume_key_size) + "+" +
                     std::to_string(open.cookie_key_size) + " do not fill the " +
                     std::to_string(keys.size()) + " payload bytes");
  }
  if (open.volume_key_size == 0) return Malformed("OPEN volume key is empty (no NUL)");
  if (open.cookie_key_size == 0) return Malformed("OPEN cookie key is empty");
  const char* volume = reinterpret_cast<const char*>(keys.data());
  if (volume[open.volume_key_size - 1] != '\0') {
    return Malformed("OPEN volume key is not NUL-terminated");
  }
  if (std::memchr(volume, '\0', open.volume_key_size - 1) != nullptr) {
    return Malformed("OPEN volume key has an embedded NUL");
  }
  if (!fd.valid()) return Malformed("OPEN without an anon fd");
  OpenMessage m;
  m.msg_id = h.msg_id;
  m.object_id = h.object_id;
  m.volume_key.assign(volume, open.volume_key_size - 1);
  m.cookie_key.assign(volume + open.volume_key_size, open.cookie_key_size);
  m.flags = open.flags;
  m.anon_fd = std::move(fd);
  return CacheMessage(std::move(m));
}

Result<CacheMessage> DecodeRequest(const cachefiles_msg& h, std::span<const std::byte> payload,
                                   UniqueFd anon_fd) {
  switch (h.opcode) {
    case CACHEFILES_OP_OPEN:
      return DecodeOpen(h, payload, std::move(anon_fd));
    case CACHEFILES_OP_READ: {
      if (anon_fd.valid()) return Malformed("READ carries a fd");
      if (payload.size() != kReadPayloadSize) {
        return Malformed("READ payload of " + std::to_string(payload.size()) + " bytes");
      }
      auto r = Load<cachefiles_read>(payload, 0);
      return CacheMessage(ReadMessage{h.msg_id, h.object_id, r.off, r.len});
    }
    case CACHEFILES_OP_CLOSE:
      if (anon_fd.valid()) return Malformed("CLOSE carries a fd");
      if (!payload.empty()) {
        return Malformed("CLOSE payload of " + std::to_string(payload.size()) + " bytes");
      }
      return CacheMessage(CloseMessage{h.msg_id, h.object_id});
    default:
      return Malformed("unknown opcode " + std::to_string(h.opcode));
  }
}

}  // namespace

Result<CacheMessage> MessageDecoder::Decode(std::span<const std::byte> bytes, UniqueFd anon_fd) {
  if (bytes.size() < kMessageHeaderSize) {
    return Malformed("message of " + std::to_string(bytes.size()) +
                     " bytes is shorter than "
                     "its header");
  }
  if (bytes.size() > kMaxMessageSize) {
    return Malformed("message of " + std::to_string(bytes.size()) + " bytes exceeds 1024");
  }
  auto h = Load<cachefiles_msg>(bytes, 0);
  if (h.len != bytes.size()) {
    return Malformed("header len " + std::to_string(h.len) + " but " +
                     std::to_string(bytes.size()) + " bytes read");
  }
  Result<CacheMessage> m = DecodeRequest(h, bytes.subspan(kMessageHeaderSize), std::move(anon_fd));
  if (m.ok() || (h.opcode != CACHEFILES_OP_OPEN && h.opcode != CACHEFILES_OP_READ)) return m;
  // The header names a request the kernel waits for: hand it up to be failed.
  return CacheMessage(RejectedMessage{static_cast<CacheOpcode>(h.opcode), h.msg_id, h.object_id,
                                      m.status().message()});
}

UniqueFd MessageDecoder::TakeKernelOpenFd(std::span<const std::byte> bytes) {
  if (bytes.size() < kMessageHeaderSize + kOpenPayloadHeaderSize) return UniqueFd();
  auto h = Load<cachefiles_msg>(bytes, 0);
  if (h.opcode != CACHEFILES_OP_OPEN) return UniqueFd();
  auto open = Load<cachefiles_open>(bytes, kMessageHeaderSize);
  // The kernel's fd fits an int (get_unused_fd_flags); anything else is not an fd.
  if (open.fd > static_cast<std::uint32_t>(INT32_MAX)) return UniqueFd();
  return UniqueFd(static_cast<int>(open.fd));
}

}  // namespace lazyblob
