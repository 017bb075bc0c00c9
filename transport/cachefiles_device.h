// CachefilesDevice: the real /dev/cachefiles in on-demand mode (PROTOCOL.md "Device setup").
//
// Open() opens the device, writes `dir <cache_dir>`, `tag <tag>` and `bind ondemand`, one
// command per write(), and turns each known failure into a message that says what to fix.
// Adopt() takes a device fd that is already bound (handed over by a supervisor or the
// systemd fd store); the new owner then calls Restore().
//
// The device's read() never blocks (it returns 0 when no request is pending), so the fd is
// opened without O_NONBLOCK; Read() still treats EAGAIN as "nothing pending".
//
// Thread-safety: as CacheDevice: Read() from one thread; ReplyOpen/CompleteRead/Restore from
// any thread (each is one write or ioctl on the kernel's side, serialized there).
#ifndef LAZYBLOB_TRANSPORT_CACHEFILES_DEVICE_H_
#define LAZYBLOB_TRANSPORT_CACHEFILES_DEVICE_H_

#include <memory>
#include <string>

#include "core/cache_device.h"
#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

struct CachefilesDeviceOptions {
  std::string device_path = "/dev/cachefiles";
  // Must exist on ext4 or xfs (cachefiles needs tmpfile, xattrs and sync_fs).
  std::string cache_dir;
  // Names this cache (fscache tag); at most 4095 bytes with the command.
  std::string tag = "lazyblob";

  Status Validate() const;
};

class CachefilesDevice final : public CacheDevice {
 public:
  static Result<std::unique_ptr<CachefilesDevice>> Open(const CachefilesDeviceOptions& options);
  // `already_bound_fd` must be an open, bound /dev/cachefiles fd.
  static Result<std::unique_ptr<CachefilesDevice>> Adopt(UniqueFd already_bound_fd);

  int poll_fd() const override { return fd_.get(); }
  Result<std::optional<CacheMessage>> Read() override;
  Status ReplyOpen(std::uint32_t msg_id, std::int64_t size_or_negative_errno) override;
  Status CompleteRead(int anon_fd, std::uint32_t msg_id) override;
  Status Restore() override;

  // Borrowed device fd, for handing over (SendFds / the systemd fd store).
  int fd() const { return fd_.get(); }

 private:
  explicit CachefilesDevice(UniqueFd fd) : fd_(std::move(fd)) {}
  Status WriteCommand(const std::string& command);

  UniqueFd fd_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_CACHEFILES_DEVICE_H_
