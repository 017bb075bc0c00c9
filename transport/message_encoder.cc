#include "transport/message_encoder.h"

#include <linux/cachefiles.h>

#include <cstring>

namespace lazyblob {
namespace {

std::vector<std::byte> Header(std::uint32_t msg_id, std::uint32_t opcode, std::uint32_t object_id,
                              std::size_t payload_size) {
  std::vector<std::byte> out(sizeof(cachefiles_msg) + payload_size);
  cachefiles_msg h{};
  h.msg_id = msg_id;
  h.opcode = opcode;
  h.len = static_cast<std::uint32_t>(out.size());
  h.object_id = object_id;
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

}  // namespace

std::vector<std::byte> MessageEncoder::Open(std::uint32_t msg_id, std::uint32_t object_id,
                                            std::string_view volume_key,
                                            std::string_view cookie_key, std::uint32_t fd,
                                            std::uint32_t flags) {
  std::size_t volume_size = volume_key.size() + 1;
  auto out = Header(msg_id, CACHEFILES_OP_OPEN, object_id,
                    sizeof(cachefiles_open) + volume_size + cookie_key.size());
  cachefiles_open o{};
  o.volume_key_size = static_cast<std::uint32_t>(volume_size);
  o.cookie_key_size = static_cast<std::uint32_t>(cookie_key.size());
  o.fd = fd;
  o.flags = flags;
  std::byte* p = out.data() + sizeof(cachefiles_msg);
  std::memcpy(p, &o, sizeof o);
  p += sizeof o;
  if (!volume_key.empty()) std::memcpy(p, volume_key.data(), volume_key.size());
  p[volume_key.size()] = std::byte{0};
  if (!cookie_key.empty()) std::memcpy(p + volume_size, cookie_key.data(), cookie_key.size());
  return out;
}

std::vector<std::byte> MessageEncoder::Read(std::uint32_t msg_id, std::uint32_t object_id,
                                            std::uint64_t offset, std::uint64_t length) {
  auto out = Header(msg_id, CACHEFILES_OP_READ, object_id, sizeof(cachefiles_read));
  cachefiles_read r{};
  r.off = offset;
  r.len = length;
  std::memcpy(out.data() + sizeof(cachefiles_msg), &r, sizeof r);
  return out;
}

std::vector<std::byte> MessageEncoder::Close(std::uint32_t msg_id, std::uint32_t object_id) {
  return Header(msg_id, CACHEFILES_OP_CLOSE, object_id, 0);
}

}  // namespace lazyblob
