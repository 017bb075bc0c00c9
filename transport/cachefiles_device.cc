#include "transport/cachefiles_device.h"

#include <fcntl.h>
#include <linux/cachefiles.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "transport/message_decoder.h"

namespace lazyblob {
namespace {

constexpr char kNoOndemand[] =
    "the kernel lacks cachefiles on-demand mode: needs Linux >= 5.19 with "
    "CONFIG_CACHEFILES_ONDEMAND=y and CONFIG_EROFS_FS_ONDEMAND=y";

Status OpenError(int err, const std::string& path) {
  Status s = Status::FromErrno(err, "open " + path);
  switch (err) {
    case EBUSY:
      return s.WithContext(
          "another process holds the cachefiles device (only one may; is cachefilesd "
          "running?)");
    case EPERM:
    case EACCES:
      return s.WithContext("opening the cachefiles device needs CAP_SYS_ADMIN");
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return s.WithContext(
          "no cachefiles device: load the module (modprobe cachefiles) or use a kernel "
          "with CONFIG_CACHEFILES");
    default:
      return s;
  }
}

}  // namespace

Status CachefilesDeviceOptions::Validate() const {
  if (device_path.empty()) return InvalidArgument("device_path is empty");
  if (cache_dir.empty()) return InvalidArgument("cache_dir is empty");
  if (cache_dir.find('\n') != std::string::npos || tag.find('\n') != std::string::npos) {
    return InvalidArgument("cache_dir and tag must not contain a newline");
  }
  if (tag.empty()) return InvalidArgument("tag is empty");
  if (cache_dir.size() + 8 > 4095 || tag.size() + 8 > 4095) {
    return InvalidArgument("cache_dir or tag longer than a device command allows");
  }
  return Status::Ok();
}

Result<std::unique_ptr<CachefilesDevice>> CachefilesDevice::Open(
    const CachefilesDeviceOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  int fd = ::open(options.device_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return OpenError(errno, options.device_path);
  std::unique_ptr<CachefilesDevice> dev(new CachefilesDevice(UniqueFd(fd)));
  Status s = dev->WriteCommand("dir " + options.cache_dir);
  if (!s.ok()) return s.WithContext("cache dir " + options.cache_dir);
  LB_RETURN_IF_ERROR(dev->WriteCommand("tag " + options.tag));
  s = dev->WriteCommand("bind ondemand");
  if (!s.ok()) {
    if (s.errno_value() == EINVAL) return Status(StatusCode::kUnsupported, kNoOndemand, EINVAL);
    if (s.errno_value() == EOPNOTSUPP) {
      return s.WithContext("the cache dir " + options.cache_dir +
                           " must be on ext4 or xfs (cachefiles needs tmpfile, xattrs and "
                           "sync_fs; tmpfs is refused)");
    }
    return s;
  }
  return dev;
}

Result<std::unique_ptr<CachefilesDevice>> CachefilesDevice::Adopt(UniqueFd already_bound_fd) {
  if (!already_bound_fd.valid()) return InvalidArgument("Adopt: invalid device fd");
  return std::unique_ptr<CachefilesDevice>(new CachefilesDevice(std::move(already_bound_fd)));
}

Status CachefilesDevice::WriteCommand(const std::string& command) {
  for (;;) {
    ssize_t n = ::write(fd_.get(), command.data(), command.size());
    if (n >= 0) return Status::Ok();  // the kernel takes a command whole or fails it
    if (errno == EINTR) continue;
    return Status::FromErrno(errno, "cachefiles command '" + command + "'");
  }
}

Result<std::optional<CacheMessage>> CachefilesDevice::Read() {
  // One read() returns exactly one message; a buffer of CACHEFILES_MSG_MAX_SIZE always fits.
  alignas(8) std::array<std::byte, kMaxMessageSize> buf;
  ssize_t n;
  do {
    n = ::read(fd_.get(), buf.data(), buf.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return std::optional<CacheMessage>();
    if (errno == EMSGSIZE) return Malformed("cachefiles message larger than 1024 bytes");
    return Status::FromErrno(errno, "read /dev/cachefiles");
  }
  if (n == 0) return std::optional<CacheMessage>();
  std::span<const std::byte> bytes(buf.data(), static_cast<std::size_t>(n));
  LB_ASSIGN_OR_RETURN(CacheMessage m,
                      MessageDecoder::Decode(bytes, MessageDecoder::TakeKernelOpenFd(bytes)));
  return std::optional<CacheMessage>(std::move(m));
}

Status CachefilesDevice::ReplyOpen(std::uint32_t msg_id, std::int64_t size_or_negative_errno) {
  return WriteCommand("copen " + std::to_string(msg_id) + "," +
                      std::to_string(size_or_negative_errno));
}

Status CachefilesDevice::CompleteRead(int anon_fd, std::uint32_t msg_id) {
  if (::ioctl(anon_fd, CACHEFILES_IOC_READ_COMPLETE, static_cast<unsigned long>(msg_id)) < 0) {
    return Status::FromErrno(errno, "CACHEFILES_IOC_READ_COMPLETE " + std::to_string(msg_id));
  }
  return Status::Ok();
}

Status CachefilesDevice::Restore() { return WriteCommand("restore"); }

}  // namespace lazyblob
