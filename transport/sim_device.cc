#include "transport/sim_device.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "transport/fd_passing.h"
#include "transport/kernel_simulator_state.h"
#include "transport/message_decoder.h"

namespace lazyblob {
namespace {

bool FrameIs(const std::byte* buf, std::size_t n, std::string_view tag) {
  return n == tag.size() && std::memcmp(buf, tag.data(), n) == 0;
}

}  // namespace

Result<std::unique_ptr<SimDevice>> SimDevice::Connect(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("socket path too long: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    return Status::FromErrno(errno, "connect " + socket_path);
  }
  std::unique_ptr<SimDevice> dev(new SimDevice(std::move(fd)));
  std::array<std::byte, 64> hello;
  UniqueFd none;
  auto n = dev->ReceiveFrame(hello.data(), hello.size(), &none, /*wait=*/true);
  if (!n.ok()) return n.status();
  if (!n->has_value()) return IoError("no greeting from the simulator at " + socket_path);
  if (FrameIs(hello.data(), **n, kSimHelloBusy)) {
    return Status(StatusCode::kBusy, "the simulated cachefiles device is already open", EBUSY);
  }
  if (!FrameIs(hello.data(), **n, kSimHelloOk)) return Malformed("bad simulator greeting");
  return dev;
}

Result<std::unique_ptr<SimDevice>> SimDevice::Adopt(UniqueFd device_fd) {
  if (!device_fd.valid()) return InvalidArgument("SimDevice::Adopt: invalid fd");
  return std::unique_ptr<SimDevice>(new SimDevice(std::move(device_fd)));
}

Result<std::optional<std::size_t>> SimDevice::ReceiveFrame(void* buf, std::size_t cap, UniqueFd* fd,
                                                           bool wait) {
  auto got =
      ReceiveWithFds(fd_.get(), {static_cast<std::byte*>(buf), cap}, wait ? 0 : MSG_DONTWAIT);
  if (!got.ok()) {
    if (got.status().errno_value() == EAGAIN) return std::optional<std::size_t>();
    return got.status().WithContext("simulated device");
  }
  // A frame carries at most one fd (an OPEN's anon fd); any extra is closed with `got`.
  if (!got->fds.empty() && !fd->valid()) *fd = std::move(got->fds.front());
  const std::size_t n = got->bytes;
  if (n == 0) return IoError("the simulated cachefiles device hung up (simulator gone)");
  if (got->truncated) {
    fd->reset();
    return Malformed("simulated device frame larger than 1024 bytes (EMSGSIZE)");
  }
  return std::optional<std::size_t>(n);
}

Result<std::optional<CacheMessage>> SimDevice::Read() {
  MutexLock lk(&read_mu_);
  for (;;) {
    alignas(8) std::array<std::byte, kMaxMessageSize> buf;
    UniqueFd fd;
    LB_ASSIGN_OR_RETURN(auto n, ReceiveFrame(buf.data(), buf.size(), &fd, /*wait=*/false));
    if (!n.has_value()) return std::optional<CacheMessage>();
    if (FrameIs(buf.data(), *n, kSimRestoreMarker)) continue;  // a restore from elsewhere
    std::span<std::byte> bytes(buf.data(), *n);
    // Like the kernel, the OPEN payload names the fd as installed in this process.
    if (fd.valid() && *n >= kMessageHeaderSize + kOpenPayloadHeaderSize) {
      std::uint32_t num = static_cast<std::uint32_t>(fd.get());
      std::memcpy(bytes.data() + kMessageHeaderSize + 8, &num, sizeof num);
    }
    LB_ASSIGN_OR_RETURN(CacheMessage m, MessageDecoder::Decode(bytes, std::move(fd)));
    return std::optional<CacheMessage>(std::move(m));
  }
}

Status SimDevice::Send(const std::string& command) {
  for (;;) {
    if (::send(fd_.get(), command.data(), command.size(), MSG_NOSIGNAL) >= 0) {
      return Status::Ok();
    }
    if (errno == EINTR) continue;
    return Status::FromErrno(errno, "simulated device command '" + command + "'");
  }
}

Status SimDevice::ReplyOpen(std::uint32_t msg_id, std::int64_t size_or_negative_errno) {
  return Send("copen " + std::to_string(msg_id) + "," + std::to_string(size_or_negative_errno));
}

Status SimDevice::CompleteRead(int /*anon_fd*/, std::uint32_t msg_id) {
  return Send("cread " + std::to_string(msg_id));
}

Status SimDevice::Restore() {
  MutexLock lk(&read_mu_);
  LB_RETURN_IF_ERROR(Send("restore"));
  // Frames queued before the simulator processed the restore are stale: it re-sends every
  // request that still needs an answer after the marker.
  for (;;) {
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, restore_timeout_ms_);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno(errno, "poll simulated device");
    if (r == 0) return Status::FromErrno(ETIMEDOUT, "restore: no acknowledgement");
    alignas(8) std::array<std::byte, kMaxMessageSize> buf;
    UniqueFd stale_fd;  // closed at the end of the iteration
    LB_ASSIGN_OR_RETURN(auto n, ReceiveFrame(buf.data(), buf.size(), &stale_fd, false));
    if (n.has_value() && FrameIs(buf.data(), *n, kSimRestoreMarker)) return Status::Ok();
  }
}

}  // namespace lazyblob
