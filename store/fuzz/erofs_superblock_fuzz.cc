// libFuzzer target: ParseErofsSuperblock reads the head of any file a user imports. It
// must reject or decode any bytes without reading outside them, and what it accepts must
// be self-consistent (a block size it allows, a size check that never overflows).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "store/erofs_superblock.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lazyblob;
  // An odd first byte: the rest goes right after 1024 zero bytes and the EROFS magic, so
  // the fuzzer spends its time on superblocks, not on finding the magic.
  std::vector<std::uint8_t> shaped;
  std::span<const std::uint8_t> input(data, size);
  if (size > 0 && (data[0] & 1) != 0) {
    shaped.assign(kErofsSuperblockOffset, 0);
    for (int i = 0; i < 4; ++i) shaped.push_back(static_cast<std::uint8_t>(kErofsMagic >> (8 * i)));
    shaped.insert(shaped.end(), data + 1, data + size);
    input = shaped;
  }
  auto sb = ParseErofsSuperblock(input);
  if (!sb.ok()) return 0;
  if (sb->blkszbits < 9 || sb->blkszbits > 16) std::abort();
  // The size check must hold for the sizes around the superblock's own.
  const std::uint64_t bytes = std::uint64_t{sb->blocks} << sb->blkszbits;
  for (std::uint64_t s : {std::uint64_t{0}, bytes, bytes + 1, bytes > 0 ? bytes - 1 : 0}) {
    CheckErofsImageForCachefiles(*sb, s).IgnoreError();
  }
  return 0;
}
