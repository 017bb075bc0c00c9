#include "core/chunk_source.h"

#include <algorithm>

namespace lazyblob {

std::string ChunkKey::ToHex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(32, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = kDigits[bytes[i] >> 4];
    s[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return s;
}

Result<ChunkKey> ChunkKey::FromHex(std::string_view hex) {
  if (hex.size() != 32) return InvalidArgument("chunk key must be 32 hex digits");
  ChunkKey k;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < 16; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgument("chunk key has a non-hex digit");
    k.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return k;
}

std::pair<std::size_t, std::size_t> BlobMap::Covering(std::uint64_t offset,
                                                      std::uint64_t length) const {
  if (offset >= size || length == 0) return {0, 0};
  const std::uint64_t end = std::min<std::uint64_t>(size, offset + std::min(length, size));
  // First extent whose end is past `offset`.
  auto first = std::upper_bound(
      extents.begin(), extents.end(), offset,
      [](std::uint64_t off, const ChunkExtent& e) { return off < e.blob_offset + e.length; });
  auto last = std::lower_bound(
      first, extents.end(), end,
      [](const ChunkExtent& e, std::uint64_t stop) { return e.blob_offset < stop; });
  return {static_cast<std::size_t>(first - extents.begin()),
          static_cast<std::size_t>(last - extents.begin())};
}

}  // namespace lazyblob
