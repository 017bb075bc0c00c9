#include "transport/fanotify_group.h"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>

#include "transport/fanotify_uapi.h"

namespace lazyblob {
namespace {

constexpr char kNoPreContent[] =
    "the kernel lacks fanotify pre-content events (FAN_PRE_ACCESS): needs Linux >= 6.14 "
    "with CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y";

Status InitError(int err) {
  Status s = Status::FromErrno(err, "fanotify_init(FAN_CLASS_PRE_CONTENT)");
  switch (err) {
    case ENOSYS:
      return Status(StatusCode::kUnsupported,
                    "the kernel lacks fanotify (CONFIG_FANOTIFY=y is needed): " + s.message(), err);
    case EINVAL:
      return Status(StatusCode::kUnsupported,
                    "the kernel lacks fanotify permission events "
                    "(CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y is needed): " +
                        s.message(),
                    err);
    case EPERM:
      return s.WithContext("a fanotify pre-content group needs CAP_SYS_ADMIN");
    case EMFILE:
      return s.WithContext("too many fanotify groups (fs.fanotify.max_user_groups) or fds");
    default:
      return s;
  }
}

Status MarkError(int err, const std::string& what) {
  Status s = Status::FromErrno(err, "fanotify_mark(FAN_PRE_ACCESS) " + what);
  switch (err) {
    case EINVAL:
      return Status(StatusCode::kUnsupported, std::string(kNoPreContent) + ": " + s.message(), err);
    case EOPNOTSUPP:
      return Status(
          StatusCode::kUnsupported,
          "the filesystem holding " + what +
              " does not support pre-content events (ext4, xfs and btrfs do): " + s.message(),
          err);
    case ENOSPC:
      return s.WithContext("too many fanotify marks (fs.fanotify.max_user_marks)");
    default:
      return s;
  }
}

}  // namespace

Status FanotifyGroupOptions::Validate() const {
  if (read_buffer_bytes < 4096 || read_buffer_bytes > (16u << 20)) {
    return InvalidArgument("read_buffer_bytes must be within [4 KiB, 16 MiB]");
  }
  return Status::Ok();
}

Result<std::unique_ptr<FanotifyGroup>> FanotifyGroup::Open(const FanotifyGroupOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  unsigned int flags = FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC;
  if (options.nonblocking) flags |= FAN_NONBLOCK;
  if (options.unlimited_queue) flags |= FAN_UNLIMITED_QUEUE;
  int fd = ::fanotify_init(flags, O_RDWR | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) return InitError(errno);
  return std::unique_ptr<FanotifyGroup>(new FanotifyGroup(UniqueFd(fd), options.read_buffer_bytes));
}

Result<std::unique_ptr<FanotifyGroup>> FanotifyGroup::Adopt(UniqueFd group_fd,
                                                            const FanotifyGroupOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  if (!group_fd.valid()) return InvalidArgument("Adopt: invalid fanotify group fd");
  return std::unique_ptr<FanotifyGroup>(
      new FanotifyGroup(std::move(group_fd), options.read_buffer_bytes));
}

Status FanotifyGroup::ProbeSupport(const std::string& scratch_dir) {
  FanotifyGroupOptions options;
  LB_ASSIGN_OR_RETURN(auto group, Open(options));
  std::string path = scratch_dir + "/.lazyblob-fanotify-probe-XXXXXX";
  int fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "create a probe file in " + scratch_dir);
  UniqueFd file(fd);
  ::unlink(path.c_str());  // the mark holds the inode, not the name
  Status s = group->MarkPreAccess(file.get());
  if (!s.ok()) return s.WithContext("pre-content probe in " + scratch_dir);
  return group->UnmarkPreAccess(file.get());
}

bool FanotifyGroup::IsDenyErrno(int err) {
  switch (err) {
    case EIO:
    case EPERM:
    case EBUSY:
    case ETXTBSY:
    case EAGAIN:
    case ENOSPC:
    case EDQUOT:
      return true;
    default:
      return false;
  }
}

Status FanotifyGroup::Mark(unsigned int flags, int dirfd, const char* path) {
  if (::fanotify_mark(fd_.get(), flags | FAN_MARK_DONT_FOLLOW, fanotify_abi::kPreAccess, dirfd,
                      path) == 0) {
    return Status::Ok();
  }
  int err = errno;
  std::string what = path != nullptr ? std::string(path) : "fd " + std::to_string(dirfd);
  if ((flags & FAN_MARK_REMOVE) != 0 && err == ENOENT) {
    return NotFound("no FAN_PRE_ACCESS mark on " + what);
  }
  return MarkError(err, what);
}

Status FanotifyGroup::MarkPreAccess(const std::string& path) {
  return Mark(FAN_MARK_ADD, AT_FDCWD, path.c_str());
}
Status FanotifyGroup::MarkPreAccess(int file_fd) { return Mark(FAN_MARK_ADD, file_fd, nullptr); }
Status FanotifyGroup::UnmarkPreAccess(const std::string& path) {
  return Mark(FAN_MARK_REMOVE, AT_FDCWD, path.c_str());
}
Status FanotifyGroup::UnmarkPreAccess(int file_fd) {
  return Mark(FAN_MARK_REMOVE, file_fd, nullptr);
}

Result<FanotifyBatch> FanotifyGroup::Read() { return Read(read_buffer_bytes_); }

Result<FanotifyBatch> FanotifyGroup::Read(std::size_t max_bytes) {
  const std::size_t cap = std::min(max_bytes, read_buffer_bytes_) / 8 * 8;
  // Aligned for the metadata's u64 mask (the decoder memcpys anyway).
  auto buf = std::make_unique_for_overwrite<std::uint64_t[]>(cap / 8 + 1);
  ssize_t n;
  do {
    n = ::read(fd_.get(), buf.get(), cap);
  } while (n < 0 && errno == EINTR);
  FanotifyBatch batch;
  if (n < 0) {
    if (errno == EAGAIN) return batch;
    return Status::FromErrno(errno, "read fanotify group");
  }
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(buf.get()),
                                   static_cast<std::size_t>(n));
  FanotifyDecodeResult decoded =
      FanotifyEventDecoder::Decode(bytes, &FanotifyEventDecoder::AdoptKernelFd);
  for (RejectedFanotifyEvent& r : decoded.rejected) {
    if (batch.rejected++ == 0) batch.first_rejection = r.why;
    // The kernel still waits for it: never leave a reader blocked, never allow unfilled.
    if (r.needs_answer) Respond(r.fd.get(), fanotify_abi::DenyWithErrno(EIO)).IgnoreError();
  }
  batch.events.reserve(decoded.events.size());
  for (FanotifyEvent& e : decoded.events) batch.events.emplace_back(this, std::move(e));
  return batch;
}

Status FanotifyGroup::Respond(int event_fd, std::uint32_t response) {
  fanotify_abi::Response r{event_fd, response};
  for (;;) {
    ssize_t n = ::write(fd_.get(), &r, sizeof r);
    if (n == static_cast<ssize_t>(sizeof r)) return Status::Ok();
    if (n >= 0) return IoError("short fanotify response write");
    if (errno == EINTR) continue;
    if (errno == ENOENT) {
      return NotFound("no pending fanotify event with fd " + std::to_string(event_fd));
    }
    return Status::FromErrno(errno, "fanotify response for fd " + std::to_string(event_fd));
  }
}

Status FanotifyGroup::Allow(int event_fd) { return Respond(event_fd, FAN_ALLOW); }

Status FanotifyGroup::Deny(int event_fd, int err) {
  if (!IsDenyErrno(err)) {
    return InvalidArgument("a pre-content group cannot deny with errno " + std::to_string(err));
  }
  return Respond(event_fd, fanotify_abi::DenyWithErrno(err));
}

}  // namespace lazyblob
