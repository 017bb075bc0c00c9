#include "store/erofs_superblock.h"

#include <cstdio>
#include <string>
#include <vector>

namespace lazyblob {
namespace {

// Offsets inside struct erofs_super_block.
constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kChecksumAt = 4;
constexpr std::size_t kFeatureCompatAt = 8;
constexpr std::size_t kBlkszbitsAt = 12;
constexpr std::size_t kExtslotsAt = 13;
constexpr std::size_t kRootNidAt = 14;
constexpr std::size_t kInosAt = 16;
constexpr std::size_t kBlocksAt = 36;
constexpr std::size_t kMetaBlkaddrAt = 40;
constexpr std::size_t kXattrBlkaddrAt = 44;
constexpr std::size_t kFeatureIncompatAt = 80;
constexpr std::size_t kComprAlgsAt = 84;
constexpr std::size_t kExtraDevicesAt = 86;
constexpr std::size_t kDevtSlotoffAt = 88;
constexpr std::size_t kDirblkbitsAt = 90;
constexpr std::size_t kPackedNidAt = 96;

std::uint16_t Le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }
std::uint32_t Le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}
std::uint64_t Le64(const std::uint8_t* p) { return Le32(p) | std::uint64_t{Le32(p + 4)} << 32; }

struct Crc32cTable {
  std::uint32_t v[256];
  constexpr Crc32cTable() : v() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      v[i] = c;
    }
  }
};
constexpr Crc32cTable kCrc32c;

std::string Hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

}  // namespace

std::uint32_t ErofsCrc32c(std::uint32_t crc, std::span<const std::uint8_t> data) {
  for (std::uint8_t b : data) crc = kCrc32c.v[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc;
}

Result<ErofsSuperblock> ParseErofsSuperblock(std::span<const std::uint8_t> head,
                                             bool* checksum_verified) {
  if (checksum_verified != nullptr) *checksum_verified = false;
  if (head.size() < kErofsSuperblockOffset + kErofsSuperblockBytes) {
    return Malformed("not an EROFS image: " + std::to_string(head.size()) +
                     " bytes, too short to hold a superblock (it ends at byte " +
                     std::to_string(kErofsSuperblockOffset + kErofsSuperblockBytes) + ")");
  }
  const std::uint8_t* p = head.data() + kErofsSuperblockOffset;
  const std::uint32_t magic = Le32(p + kMagicAt);
  if (magic != kErofsMagic) {
    return Malformed("not an EROFS image: no EROFS magic at byte 1024 (found " + Hex32(magic) +
                     ", want " + Hex32(kErofsMagic) + ")");
  }
  ErofsSuperblock sb;
  sb.feature_compat = Le32(p + kFeatureCompatAt);
  sb.blkszbits = p[kBlkszbitsAt];
  sb.extslots = p[kExtslotsAt];
  sb.root_nid = Le16(p + kRootNidAt);
  sb.inos = Le64(p + kInosAt);
  sb.blocks = Le32(p + kBlocksAt);
  sb.meta_blkaddr = Le32(p + kMetaBlkaddrAt);
  sb.xattr_blkaddr = Le32(p + kXattrBlkaddrAt);
  sb.feature_incompat = Le32(p + kFeatureIncompatAt);
  sb.available_compr_algs = Le16(p + kComprAlgsAt);
  sb.extra_devices = Le16(p + kExtraDevicesAt);
  sb.devt_slotoff = Le16(p + kDevtSlotoffAt);
  sb.dirblkbits = p[kDirblkbitsAt];
  sb.packed_nid = Le64(p + kPackedNidAt);
  if (sb.blkszbits < 9 || sb.blkszbits > 16) {
    return Malformed("EROFS superblock: block size 2^" + std::to_string(sb.blkszbits) +
                     " is outside 512 B..64 KiB (damaged superblock?)");
  }
  const std::size_t block_end = std::size_t{1} << sb.blkszbits;
  if ((sb.feature_compat & kErofsFeatureCompatSbChksum) != 0 &&
      block_end > kErofsSuperblockOffset && head.size() >= block_end) {
    // The kernel's erofs_superblock_csum_verify(): crc32c(~0) over [1024, block end) with
    // the checksum field zeroed.
    std::vector<std::uint8_t> copy(p, head.data() + block_end);
    for (std::size_t i = 0; i < 4; ++i) copy[kChecksumAt + i] = 0;
    const std::uint32_t crc = ErofsCrc32c(~0u, copy);
    const std::uint32_t stored = Le32(p + kChecksumAt);
    if (crc != stored) {
      return Malformed("EROFS superblock checksum mismatch (stored " + Hex32(stored) +
                       ", computed " + Hex32(crc) + "): the superblock is damaged");
    }
    if (checksum_verified != nullptr) *checksum_verified = true;
  }
  return sb;
}

Status CheckErofsImageForCachefiles(const ErofsSuperblock& sb, std::uint64_t file_bytes) {
  if (sb.blkszbits != kErofsCachefilesBlockBits) {
    return InvalidArgument("EROFS block size " + std::to_string(sb.block_size()) +
                           " is not supported: the kernel's cachefiles (fscache) backend "
                           "serves only 4096-byte blocks (mkfs.erofs -b 4096)");
  }
  if (sb.blocks == 0) return InvalidArgument("EROFS superblock says the image has 0 blocks");
  const std::uint64_t want = std::uint64_t{sb.blocks} << sb.blkszbits;
  const std::uint64_t floor = want - sb.block_size();
  if (file_bytes > want || file_bytes <= floor) {
    return InvalidArgument(
        "size " + std::to_string(file_bytes) + " bytes does not match the EROFS superblock (" +
        std::to_string(sb.blocks) + " blocks of " + std::to_string(sb.block_size()) + " = " +
        std::to_string(want) + " bytes): " +
        (file_bytes < want ? "the image is truncated" : "the file has bytes past the image"));
  }
  return Status::Ok();
}

}  // namespace lazyblob
