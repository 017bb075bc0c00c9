#include "core/anon_fd_writer.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"

namespace lazyblob {

namespace {

Status CheckPiece(std::uint64_t offset, std::span<const std::byte> data) {
  if (offset % kBlockSize != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "anon fd write at offset " + std::to_string(offset) +
                      " is not 4 KiB-aligned (the kernel answers ENOBUFS)",
                  ENOBUFS);
  }
  if (reinterpret_cast<std::uintptr_t>(data.data()) % kBlockSize != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "anon fd write from an unaligned buffer (O_DIRECT: EINVAL)", EINVAL);
  }
  if (data.size() % kBlockSize != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "anon fd write of " + std::to_string(data.size()) +
                      " bytes is not whole 4 KiB blocks; pad the last block with zeros",
                  EINVAL);
  }
  return Status::Ok();
}

}  // namespace

Status WriteBlocks(int anon_fd, std::uint64_t offset, std::span<const std::byte> aligned_data) {
  const std::span<const std::byte> pieces[] = {aligned_data};
  return WriteBlocks(anon_fd, offset, pieces);
}

Status WriteBlocks(int anon_fd, std::uint64_t offset,
                   std::span<const std::span<const std::byte>> aligned_pieces) {
  if (aligned_pieces.size() > 1024) {
    return Status(StatusCode::kInvalidArgument, "anon fd write of more than 1024 pieces", EINVAL);
  }
  std::vector<iovec> iov;
  iov.reserve(aligned_pieces.size());
  std::uint64_t at = offset;
  for (std::span<const std::byte> piece : aligned_pieces) {
    LB_RETURN_IF_ERROR(CheckPiece(at, piece));
    if (piece.empty()) continue;
    iov.push_back({const_cast<std::byte*>(piece.data()), piece.size()});
    at += piece.size();
  }
  // Short writes: drop what went out and go on from there.
  std::size_t first = 0;
  std::uint64_t done = offset;
  while (first < iov.size()) {
    ssize_t n = ::pwritev(anon_fd, iov.data() + first, static_cast<int>(iov.size() - first),
                          static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "pwrite anon fd at " + std::to_string(done));
    }
    if (n == 0) return IoError("pwrite anon fd wrote 0 bytes at " + std::to_string(done));
    done += static_cast<std::uint64_t>(n);
    auto left = static_cast<std::size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (left > 0) {
      iov[first].iov_base = static_cast<std::byte*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return Status::Ok();
}

}  // namespace lazyblob
