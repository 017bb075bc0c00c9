// libFuzzer target: MessageDecoder must reject or decode any bytes without reading out of
// bounds, and a decoded message must re-encode to the same bytes.
#include <fcntl.h>
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
  // A real fd with OPENs only, as the kernel sends them, so that ownership (close on reject)
  // is exercised and READs and CLOSEs reach their accept paths.
  std::uint32_t opcode = 0;
  if (size >= 8) std::memcpy(&opcode, data + 4, sizeof opcode);
  UniqueFd fd(opcode == 0 ? ::dup(STDERR_FILENO) : -1);
  const int raw = fd.get();
  auto r = MessageDecoder::Decode(bytes, std::move(fd));
  if (raw >= 0 && ::fcntl(raw, F_GETFD) >= 0 &&
      !(r.ok() && std::holds_alternative<OpenMessage>(*r))) {
    std::abort();  // a rejected message left its fd open
  }
  if (!r.ok() || std::holds_alternative<RejectedMessage>(*r)) return 0;
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
