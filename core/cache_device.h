// CacheDevice: the kernel side of cachefiles on-demand mode as the request engine sees
// it. transport/ has the two implementations: the real /dev/cachefiles and the simulator.
//
// Thread-safety: Read() is called by one dispatcher thread; ReplyOpen/CompleteRead/Restore
// may be called from any thread concurrently (each is one write/ioctl).
// Anon fds: the engine writes READ data with pwrite into the OpenMessage's anon fd (a real
// O_DIRECT file in both implementations; 4 KiB-aligned offsets, buffers and lengths).
#ifndef LAZYBLOB_CORE_CACHE_DEVICE_H_
#define LAZYBLOB_CORE_CACHE_DEVICE_H_

#include <cstdint>
#include <optional>

#include "core/cache_messages.h"
#include "core/status.h"

namespace lazyblob {

class CacheDevice {
 public:
  virtual ~CacheDevice() = default;

  // Borrowed fd that polls POLLIN while an unread request is pending.
  virtual int poll_fd() const = 0;

  // Reads one message. nullopt: nothing pending. A RejectedMessage: the payload did not
  // decode but the header names a request the caller must still answer. kMalformed: not
  // even that (any fd it carried is already closed); the caller counts it and keeps
  // reading. Other errors are device failures.
  virtual Result<std::optional<CacheMessage>> Read() = 0;

  // Answers an OPEN: `copen <msg_id>,<size_or_negative_errno>`.
  virtual Status ReplyOpen(std::uint32_t msg_id, std::int64_t size_or_negative_errno) = 0;

  // Completes a READ (CACHEFILES_IOC_READ_COMPLETE on `anon_fd`). The kernel re-checks
  // the range; data not written means the reader gets EIO. `anon_fd` is borrowed.
  virtual Status CompleteRead(int anon_fd, std::uint32_t msg_id) = 0;

  // After a worker restart: asks the kernel to re-send OPENs and pending READs.
  virtual Status Restore() = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_CACHE_DEVICE_H_
