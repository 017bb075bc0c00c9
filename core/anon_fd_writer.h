// WriteBlocks: writes READ data into a cachefiles anon fd the way the kernel accepts it.
//
// The anon fd is backed by an O_DIRECT cache file (fs/cachefiles/ondemand.c ->
// __cachefiles_prepare_write + __cachefiles_write). The kernel refuses an offset that is not
// page-aligned with ENOBUFS and an unaligned buffer with EINVAL (the O_DIRECT rule of the
// backing filesystem); lengths must be whole 4 KiB blocks. WriteBlocks checks these rules
// before the pwrite, so the same mistake fails the same way with the simulator (whose anon
// fds are plain O_DIRECT files that cannot enforce the kernel's exact errnos).
//
// A blob whose size is not a multiple of 4 KiB: write its last block whole, zero-padded
// after the blob's end. The kernel truncates the cache file to round_up(copen size, 4096)
// when it creates it (fs/cachefiles/namei.c cachefiles_create_tmpfile, interface.c
// cachefiles_adjust_size), so the padded block lies inside the file and does not grow it;
// readers never see past i_size. The simulator truncates its cache files the same way and
// checks that no write grew a file beyond round_up(size, 4096).
//
// Thread-safety: stateless; concurrent calls on the same fd are fine (pwrite at offsets).
#ifndef LAZYBLOB_CORE_ANON_FD_WRITER_H_
#define LAZYBLOB_CORE_ANON_FD_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/status.h"

namespace lazyblob {

// Writes `aligned_data` at `offset` into `anon_fd` (borrowed). Requires a 4 KiB-aligned
// offset (else kInvalidArgument with errno_value() ENOBUFS, as the kernel), a 4 KiB-aligned
// buffer start (else kInvalidArgument, errno EINVAL) and a whole number of 4 KiB blocks
// (else kInvalidArgument, errno EINVAL). Loops over short writes and EINTR; other write
// errors come back through Status::FromErrno.
Status WriteBlocks(int anon_fd, std::uint64_t offset, std::span<const std::byte> aligned_data);

// The same for a run of pieces that lie back to back from `offset` (e.g. consecutive chunks,
// each in its own aligned buffer), written with pwritev: one write instead of one per piece.
// Every piece must meet the rules above; at most 1024 (IOV_MAX) pieces.
Status WriteBlocks(int anon_fd, std::uint64_t offset,
                   std::span<const std::span<const std::byte>> aligned_pieces);

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_ANON_FD_WRITER_H_
