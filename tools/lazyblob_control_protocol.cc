#include "tools/lazyblob_control_protocol.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U  // Linux 6.8
#endif
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

namespace lazyblob {
namespace {

constexpr std::size_t kMaxMessage = 64 * 1024;

}  // namespace

ControlMessage& ControlMessage::Add(std::string key, std::string value) {
  fields.emplace_back(std::move(key), std::move(value));
  return *this;
}

std::string ControlMessage::Get(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return "";
}

std::vector<std::string> ControlMessage::GetAll(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : fields) {
    if (k == key) out.push_back(v);
  }
  return out;
}

Result<std::string> ControlMessage::Encode() const {
  if (verb.empty() || verb.find_first_of("\n=") != std::string::npos) {
    return InvalidArgument("control: bad verb");
  }
  std::string out = verb + "\n";
  for (const auto& [k, v] : fields) {
    if (k.empty() || k.find_first_of("\n=") != std::string::npos ||
        v.find('\n') != std::string::npos) {
      return InvalidArgument("control: a key or value holds a newline: '" + k + "'");
    }
    out += k + "=" + v + "\n";
  }
  if (out.size() > kMaxMessage) return InvalidArgument("control: message above 64 KiB");
  return out;
}

Result<ControlMessage> ControlMessage::Decode(std::string_view bytes) {
  ControlMessage m;
  std::size_t at = bytes.find('\n');
  if (at == std::string_view::npos || at == 0) return Malformed("control: no verb line");
  m.verb = std::string(bytes.substr(0, at));
  ++at;
  while (at < bytes.size()) {
    const std::size_t end = bytes.find('\n', at);
    if (end == std::string_view::npos) return Malformed("control: unterminated line");
    const std::string_view line = bytes.substr(at, end - at);
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) return Malformed("control: line without key=");
    m.Add(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
    at = end + 1;
  }
  return m;
}

ControlMessage ErrorReply(const Status& status) {
  ControlMessage m;
  m.verb = "error";
  m.Add("code", std::to_string(static_cast<int>(status.code())));
  std::string text = status.message();
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  m.Add("message", text);
  return m;
}

ControlMessage OkReply() {
  ControlMessage m;
  m.verb = "ok";
  return m;
}

Status ReplyStatus(const ControlMessage& reply) {
  if (reply.verb == "ok") return Status();
  if (reply.verb != "error") return Malformed("control: unexpected reply '" + reply.verb + "'");
  int code = static_cast<int>(StatusCode::kInternal);
  try {
    code = std::stoi(reply.Get("code"));
  } catch (...) {
  }
  if (code <= 0 || code > static_cast<int>(StatusCode::kInternal)) {
    code = static_cast<int>(StatusCode::kInternal);
  }
  return Status(static_cast<StatusCode>(code), reply.Get("message"));
}

Status SendControl(int socket_fd, const ControlMessage& message, int pass_fd) {
  LB_ASSIGN_OR_RETURN(std::string bytes, message.Encode());
  iovec iov{bytes.data(), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
  if (pass_fd >= 0) {
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &pass_fd, sizeof pass_fd);
  }
  for (;;) {
    const ssize_t n = ::sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(bytes.size())) return Status();
    if (n >= 0) return IoError("control: short send");
    if (errno != EINTR) return Status::FromErrno(errno, "control: send");
  }
}

Result<ControlMessage> ReceiveControl(int socket_fd, int timeout_ms, UniqueFd* passed_fd) {
  pollfd p{socket_fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Status::FromErrno(errno, "control: poll");
  if (r == 0) return Cancelled("control: no message within " + std::to_string(timeout_ms) + " ms");
  std::vector<char> buf(kMaxMessage + 1);
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)];
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n;
  do {
    n = ::recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::FromErrno(errno, "control: receive");
  std::vector<UniqueFd> fds;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int f;
      std::memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof f);
      fds.emplace_back(f);
    }
  }
  if (n == 0) return NotFound("control: connection closed");
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) return Malformed("control: oversized");
  if (passed_fd != nullptr && !fds.empty()) *passed_fd = std::move(fds.front());
  return ControlMessage::Decode(std::string_view(buf.data(), static_cast<std::size_t>(n)));
}

Result<ControlMessage> CallControl(int socket_fd, const ControlMessage& request, int timeout_ms,
                                   int pass_fd) {
  LB_RETURN_IF_ERROR(SendControl(socket_fd, request, pass_fd));
  return ReceiveControl(socket_fd, timeout_ms);
}

Result<UniqueFd> ConnectControl(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidArgument("control socket path '" + path + "' is empty or too long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ECONNREFUSED) {
      return NotFound("no lazyblobd serves the control socket " + path +
                      " (is lazyblobd running with the fanotify front end?)");
    }
    return Status::FromErrno(err, "connect to the control socket " + path);
  }
  return fd;
}

Result<std::uint64_t> MountIdOf(const std::string& dir) {
  struct statx stx {};
  if (::statx(AT_FDCWD, dir.c_str(), AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW,
              STATX_MNT_ID | STATX_MNT_ID_UNIQUE, &stx) != 0) {
    return Status::FromErrno(errno, "statx " + dir);
  }
  if ((stx.stx_mask & (STATX_MNT_ID | STATX_MNT_ID_UNIQUE)) == 0) {
    return Unsupported("the kernel reports no mount id (statx STATX_MNT_ID)");
  }
  if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0 &&
      (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) == 0) {
    return InvalidArgument(dir + " is not a mount point");
  }
  return static_cast<std::uint64_t>(stx.stx_mnt_id);
}

}  // namespace lazyblob
