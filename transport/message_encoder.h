// MessageEncoder: builds cachefiles on-demand messages byte for byte as the kernel does
// (fs/cachefiles/ondemand.c: cachefiles_ondemand_init_{open,read}_req, send_req). Used by
// the simulator and by tests; MessageDecoder is its inverse.
//
// Thread-safety: stateless.
#ifndef LAZYBLOB_TRANSPORT_MESSAGE_ENCODER_H_
#define LAZYBLOB_TRANSPORT_MESSAGE_ENCODER_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace lazyblob {

class MessageEncoder {
 public:
  // `volume_key` without its NUL (the encoder adds it, as volume->key + 1 with key[0]+1
  // bytes in the kernel); `cookie_key` is binary, copied as is. `fd` is the number written
  // into the payload (the kernel's installed fd; the simulator passes the real fd with
  // SCM_RIGHTS and writes the number it had on its side).
  static std::vector<std::byte> Open(std::uint32_t msg_id, std::uint32_t object_id,
                                     std::string_view volume_key, std::string_view cookie_key,
                                     std::uint32_t fd, std::uint32_t flags = 0);
  static std::vector<std::byte> Read(std::uint32_t msg_id, std::uint32_t object_id,
                                     std::uint64_t offset, std::uint64_t length);
  static std::vector<std::byte> Close(std::uint32_t msg_id, std::uint32_t object_id);
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_MESSAGE_ENCODER_H_
