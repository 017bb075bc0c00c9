// The superblock-only checks `lazyblob import` makes before it stores a file as a blob the
// kernel will mount: ParseErofsSuperblock() decodes the 128 bytes at byte 1024 of a file
// from untrusted bytes into ErofsSuperblock (store/erofs_layout.h, whose full layout
// parser walks the rest of an image), verifying the superblock checksum as the kernel
// does; CheckErofsImageForCachefiles() says whether the cachefiles backend can serve it.
//
// Why a second decoder next to ErofsLayoutParser: import must judge any file, cheaply and
// from its first block alone (a raw blob device has no superblock, an image may use
// features the layout parser does not walk yet); the layout parser needs the whole image
// and stops at unknown features. So the layout parser's walk (store/erofs_walker.cc) starts
// with ParseErofsSuperblock() and adds its own feature checks: one decoder of the bytes.
//
// Block size: the kernel accepts blkszbits 9..PAGE_SHIFT for a block device or file
// backend, but its fscache (cachefiles on-demand) backend still requires the block size to
// equal PAGE_SIZE (commit "erofs: set block size to the on-disk block size", 6.4; 4 KiB
// before). lazyblob serves that backend on 4 KiB-page machines, so
// CheckErofsImageForCachefiles() wants exactly 4096.
//
// Thread-safety: pure functions.
#ifndef LAZYBLOB_STORE_EROFS_SUPERBLOCK_H_
#define LAZYBLOB_STORE_EROFS_SUPERBLOCK_H_

#include <cstdint>
#include <span>

#include "core/status.h"
#include "store/erofs_layout.h"

namespace lazyblob {

inline constexpr std::size_t kErofsSuperblockBytes = 128;        // sizeof(erofs_super_block)
inline constexpr std::uint32_t kErofsFeatureCompatSbChksum = 1;  // superblock crc32c present
// The block size the cachefiles backend serves (PAGE_SIZE on x86-64 and 4K-page arm64).
inline constexpr std::uint8_t kErofsCachefilesBlockBits = 12;

// Decodes the superblock from the first bytes of a file (`head` should be its first block,
// 4096 bytes, or the whole file when shorter); never reads outside `head`. kMalformed with
// a reason a person can act on when: `head` ends before the superblock; the magic is not
// EROFS's; blkszbits is outside 9..16 (no kernel reads such an image); or the superblock
// checksum feature is on and the crc32c over [1024, block end) does not match. The
// checksum is checked only when `head` holds that whole block; `*checksum_verified` (when
// given) says whether it was.
Result<ErofsSuperblock> ParseErofsSuperblock(std::span<const std::uint8_t> head,
                                             bool* checksum_verified = nullptr);

// The checks for an image the cachefiles backend will serve: the block size is 4096, and
// the file's size fits the superblock's block count. A file may end inside its last block
// (the kernel zero-fills the rest), so it is consistent when
// (blocks - 1) * 4096 < file_bytes <= blocks * 4096. kInvalidArgument with the reason.
Status CheckErofsImageForCachefiles(const ErofsSuperblock& sb, std::uint64_t file_bytes);

// crc32c (Castagnoli, reflected), seeded with `crc` and without the final inversion: the
// form the kernel's crc32c(~0, ...) returns and EROFS stores.
std::uint32_t ErofsCrc32c(std::uint32_t crc, std::span<const std::uint8_t> data);

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_EROFS_SUPERBLOCK_H_
