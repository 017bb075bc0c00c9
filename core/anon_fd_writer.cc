#include "core/anon_fd_writer.h"

#include <unistd.h>

#include <cerrno>
#include <string>

#include "core/aligned_buffer.h"

namespace lazyblob {

Status WriteBlocks(int anon_fd, std::uint64_t offset, std::span<const std::byte> aligned_data) {
  if (offset % kBlockSize != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "anon fd write at offset " + std::to_string(offset) +
                      " is not 4 KiB-aligned (the kernel answers ENOBUFS)",
                  ENOBUFS);
  }
  if (reinterpret_cast<std::uintptr_t>(aligned_data.data()) % kBlockSize != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "anon fd write from an unaligned buffer (O_DIRECT: EINVAL)", EINVAL);
  }
  if (aligned_data.size() % kBlockSize != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "anon fd write of " + std::to_string(aligned_data.size()) +
                      " bytes is not whole 4 KiB blocks; pad the last block with zeros",
                  EINVAL);
  }
  std::size_t done = 0;
  while (done < aligned_data.size()) {
    ssize_t n = ::pwrite(anon_fd, aligned_data.data() + done, aligned_data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "pwrite anon fd at " + std::to_string(offset + done));
    }
    if (n == 0) return IoError("pwrite anon fd wrote 0 bytes at " + std::to_string(offset + done));
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

}  // namespace lazyblob
