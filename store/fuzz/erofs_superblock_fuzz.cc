// libFuzzer target: ParseErofsSuperblock reads the head of any file a user imports. It
// must reject or decode any bytes without reading outside them, and what it accepts must
// be self-consistent (a block size it allows, a size check that never overflows).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "store/erofs_superblock.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lazyblob;
  auto sb = ParseErofsSuperblock(std::span(data, size));
  if (!sb.ok()) return 0;
  if (sb->blkszbits < 9 || sb->blkszbits > 16) std::abort();
  // The size check must hold for the sizes around the superblock's own.
  const std::uint64_t bytes = std::uint64_t{sb->blocks} << sb->blkszbits;
  for (std::uint64_t s : {std::uint64_t{0}, bytes, bytes + 1, bytes > 0 ? bytes - 1 : 0}) {
    CheckErofsImageForCachefiles(*sb, s).IgnoreError();
  }
  return 0;
}
