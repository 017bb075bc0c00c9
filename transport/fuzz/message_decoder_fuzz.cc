// libFuzzer target: MessageDecoder must reject or decode any bytes without reading out of
// bounds, and a decoded message must re-encode to the same bytes.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <variant>

#include "transport/message_decoder.h"
#include "transport/message_encoder.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lazyblob;
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  // A real fd for OPENs so ownership (close on reject) is exercised.
  UniqueFd fd(::dup(STDERR_FILENO));
  auto r = MessageDecoder::Decode(bytes, std::move(fd));
  if (!r.ok()) return 0;
  std::vector<std::byte> again;
  if (auto* o = std::get_if<OpenMessage>(&*r)) {
    std::uint32_t fdnum;
    std::memcpy(&fdnum, data + 24, sizeof fdnum);
    again = MessageEncoder::Open(o->msg_id, o->object_id, o->volume_key, o->cookie_key, fdnum,
                                 o->flags);
  } else if (auto* rd = std::get_if<ReadMessage>(&*r)) {
    again = MessageEncoder::Read(rd->msg_id, rd->object_id, rd->offset, rd->length);
  } else {
    auto& c = std::get<CloseMessage>(*r);
    again = MessageEncoder::Close(c.msg_id, c.object_id);
  }
  if (again.size() != size || std::memcmp(again.data(), data, size) != 0) std::abort();
  return 0;
}
