// libFuzzer target: ErofsLayoutParser must parse or reject any image without reading
// outside it, crashing or running unbounded, and what it returns must lie inside it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "store/erofs_layout.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lazyblob;
  std::vector<std::byte> image(size);
  if (size > 0) std::memcpy(image.data(), data, size);
  // Most random inputs would stop at the magic: plant it so the walk is explored.
  if (size >= kErofsSuperblockOffset + 4) {
    std::memcpy(image.data() + kErofsSuperblockOffset, &kErofsMagic, 4);
  }
  ErofsLayoutOptions o;
  o.max_inodes = 4096;  // keeps each input fast; the limits themselves are under test
  o.max_ranges = 1 << 16;
  o.max_chunks_per_file = 1 << 16;
  o.max_directory_bytes = 1 << 20;
  auto r = ErofsLayoutParser::ParseBytes(image, o);
  if (!r.ok()) return 0;
  for (const ErofsRange& m : r->metadata) {
    if (m.device != 0 || m.end() > size || m.end() < m.offset) std::abort();
    if (!IsErofsMetadata(m.kind)) std::abort();
  }
  for (const ErofsRange& d : r->data) {
    if (IsErofsMetadata(d.kind)) std::abort();
    if (d.device == 0 && d.end() > size) std::abort();
    if (d.device > r->devices.size()) std::abort();
  }
  if (r->inodes > o.max_inodes) std::abort();
  (void)r->PrimaryDataRanges(size, 4096);
  return 0;
}
