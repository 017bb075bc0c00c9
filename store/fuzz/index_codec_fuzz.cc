// libFuzzer target: the index value decoders must reject or decode any bytes without
// reading out of bounds, and what they accept must encode back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "store/index_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lazyblob;
  if (size == 0) return 0;
  const std::span<const std::uint8_t> bytes(data + 1, size - 1);
  const std::vector<std::uint8_t> input(bytes.begin(), bytes.end());
  switch (data[0] % 3) {
    case 0:
      if (auto l = DecodeChunkValue(bytes); l.ok() && EncodeChunkValue(*l) != input) std::abort();
      break;
    case 1:
      if (auto r = DecodeBlobValue("id", bytes); r.ok() && EncodeBlobValue(*r) != input) {
        std::abort();
      }
      break;
    default:
      if (auto m = DecodeMap(bytes); m.ok() && EncodeMap(*m) != input) std::abort();
  }
  return 0;
}
