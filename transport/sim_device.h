// SimDevice: the CacheDevice client of a KernelSimulator, i.e. what a daemon holds instead
// of /dev/cachefiles in tests and benchmarks. Its fd is the daemon end of the simulator's
// SOCK_SEQPACKET socket: poll it, hand it to another process (SendFds, the systemd fd
// store) and Adopt() it there, exactly like a bound /dev/cachefiles fd.
//
// Read() returns one message per frame (the kernel's bytes; the OPEN's anon fd arrives with
// SCM_RIGHTS and its number is written into the payload as the kernel does). ReplyOpen sends
// `copen <id>,<size>`, CompleteRead sends `cread <id>` (the simulator's stand-in for
// CACHEFILES_IOC_READ_COMPLETE on the anon fd), Restore sends `restore` and then discards
// the frames queued before the simulator processed it (it re-sends those requests).
// Replies are asynchronous: a bad id does not fail the call; the simulator counts it.
// After the simulator is gone, Read() returns kIoError (the device hung up).
//
// Thread-safety: as CacheDevice. Read() and Restore() serialize on an internal mutex; the
// reply methods are one sendmsg each and may run from any thread.
#ifndef LAZYBLOB_TRANSPORT_SIM_DEVICE_H_
#define LAZYBLOB_TRANSPORT_SIM_DEVICE_H_

#include <memory>
#include <string>

#include "core/cache_device.h"
#include "core/mutex.h"
#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

class SimDevice final : public CacheDevice {
 public:
  // Connects to KernelSimulator::Listen(socket_path). kBusy when the simulator already has
  // a device attached (like a second open of /dev/cachefiles).
  static Result<std::unique_ptr<SimDevice>> Connect(const std::string& socket_path);
  // Takes a device fd from KernelSimulator::OpenDevice() or handed over by another process.
  static Result<std::unique_ptr<SimDevice>> Adopt(UniqueFd device_fd);

  int poll_fd() const override { return fd_.get(); }
  Result<std::optional<CacheMessage>> Read() override;
  Status ReplyOpen(std::uint32_t msg_id, std::int64_t size_or_negative_errno) override;
  Status CompleteRead(int anon_fd, std::uint32_t msg_id) override;
  Status Restore() override;

  // Borrowed device fd, for handing over.
  int fd() const { return fd_.get(); }
  // How long Restore() waits for the simulator's acknowledgement.
  void set_restore_timeout_ms(int ms) { restore_timeout_ms_ = ms; }

 private:
  explicit SimDevice(UniqueFd fd) : fd_(std::move(fd)) {}
  Status Send(const std::string& command);
  // One frame: bytes (size returned) and the fd it carried. nullopt when none is queued.
  Result<std::optional<std::size_t>> ReceiveFrame(void* buf, std::size_t cap, UniqueFd* fd,
                                                  bool wait);

  UniqueFd fd_;
  Mutex read_mu_;  // one reader at a time: Read() and Restore() consume frames
  int restore_timeout_ms_ = 60'000;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_SIM_DEVICE_H_
