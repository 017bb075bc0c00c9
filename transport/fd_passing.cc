#include "transport/fd_passing.h"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace lazyblob {
namespace {

struct Header {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t fd_count;
  std::uint32_t name_len;
};
static_assert(sizeof(Header) == 12);

}  // namespace

Status SendFds(int socket_fd, std::span<const int> fds, std::string_view name) {
  if (fds.empty() || fds.size() > kMaxPassedFds) {
    return InvalidArgument("SendFds: 1.." + std::to_string(kMaxPassedFds) + " fds");
  }
  if (name.size() > 255) return InvalidArgument("SendFds: name longer than 255 bytes");
  Header h{kFdPassingMagic, kFdPassingVersion, static_cast<std::uint16_t>(fds.size()),
           static_cast<std::uint32_t>(name.size())};
  std::string payload(sizeof h + name.size(), '\0');
  std::memcpy(payload.data(), &h, sizeof h);
  if (!name.empty()) std::memcpy(payload.data() + sizeof h, name.data(), name.size());
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  iovec iov{payload.data(), payload.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  for (;;) {
    ssize_t n = ::sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(payload.size())) return Status::Ok();
    if (n >= 0) return IoError("SendFds: short send");
    if (errno != EINTR) return Status::FromErrno(errno, "SendFds sendmsg");
  }
}

Result<ReceivedMessage> ReceiveWithFds(int socket_fd, std::span<std::byte> buf, int flags) {
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n;
  do {
    n = ::recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC | flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::FromErrno(errno, "recvmsg");
  ReceivedMessage out;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int f;
      std::memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof f);
      out.fds.emplace_back(f);
    }
  }
  out.bytes = static_cast<std::size_t>(n);
  out.truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return out;
}

Result<ReceivedFds> ReceiveFds(int socket_fd) {
  char data[sizeof(Header) + 256];
  auto got = ReceiveWithFds(socket_fd, std::as_writable_bytes(std::span(data)), 0);
  if (!got.ok()) return got.status().WithContext("ReceiveFds");
  ReceivedFds out;
  out.fds = std::move(got->fds);
  const std::size_t n = got->bytes;
  if (n == 0) return IoError("ReceiveFds: peer closed");
  if (got->truncated) return Malformed("ReceiveFds: too many fds");
  Header h;
  if (n < sizeof h) return Malformed("ReceiveFds: short header");
  std::memcpy(&h, data, sizeof h);
  if (h.magic != kFdPassingMagic) return Malformed("ReceiveFds: bad magic");
  if (h.version != kFdPassingVersion) {
    return Malformed("ReceiveFds: unsupported version " + std::to_string(h.version));
  }
  if (h.name_len != n - sizeof h) {
    return Malformed("ReceiveFds: name length does not match the message");
  }
  if (h.fd_count != out.fds.size()) {
    return Malformed("ReceiveFds: header says " + std::to_string(h.fd_count) + " fds, got " +
                     std::to_string(out.fds.size()));
  }
  out.name.assign(data + sizeof h, h.name_len);
  return out;
}

Status StoreFdInSystemd(int fd, std::string_view name) {
  if (name.empty() || name.size() > 255 || name.find_first_of(":\n") != std::string_view::npos) {
    return InvalidArgument("fd store name must be 1..255 bytes without ':' or newline");
  }
  std::string state = "FDSTORE=1\nFDNAME=" + std::string(name);
  int r = sd_pid_notify_with_fds(0, 0, state.c_str(), &fd, 1);
  if (r < 0) return Status::FromErrno(-r, "sd_pid_notify_with_fds FDSTORE");
  if (r == 0) return Unsupported("not started by systemd (NOTIFY_SOCKET unset)");
  return Status::Ok();
}

Result<std::optional<UniqueFd>> TakeFdFromSystemd(std::string_view name) {
  char** names = nullptr;
  int n = sd_listen_fds_with_names(0, &names);
  if (n < 0) return Status::FromErrno(-n, "sd_listen_fds_with_names");
  std::optional<UniqueFd> found;
  for (int i = 0; i < n; ++i) {
    if (!found && names != nullptr && names[i] != nullptr && name == names[i]) {
      found.emplace(SD_LISTEN_FDS_START + i);
    }
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  return found;
}

}  // namespace lazyblob
