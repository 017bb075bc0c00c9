#include "tools/lazyblobd_keeper.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "transport/fd_passing.h"

namespace lazyblob {
namespace {

constexpr std::uint32_t kMagic = 0x504b424c;  // "LBKP"
constexpr std::size_t kMaxKey = 1024;
constexpr std::size_t kMaxValue = 8 * 1024;
enum Op : std::uint8_t { kPut = 1, kDrop = 2, kEnd = 3 };

struct Header {
  std::uint32_t magic;
  std::uint8_t op;
  std::uint8_t reserved;
  std::uint16_t key_len;
  std::uint32_t value_len;
};
static_assert(sizeof(Header) == 12);

Status Send(int socket_fd, Op op, std::string_view key, std::string_view value, int fd) {
  if (op != kEnd && (key.empty() || key.size() > kMaxKey)) {
    return InvalidArgument("keeper key must be 1..1024 bytes");
  }
  if (value.size() > kMaxValue) return InvalidArgument("keeper value above 8 KiB");
  Header h{kMagic, op, 0, static_cast<std::uint16_t>(key.size()),
           static_cast<std::uint32_t>(value.size())};
  std::string payload(sizeof h, '\0');
  std::memcpy(payload.data(), &h, sizeof h);
  payload.append(key);
  payload.append(value);
  iovec iov{payload.data(), payload.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  }
  for (;;) {
    const ssize_t n = ::sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(payload.size())) return Status();
    if (n >= 0) return IoError("keeper: short send");
    if (errno != EINTR) return Status::FromErrno(errno, "keeper sendmsg");
  }
}

struct Message {
  Op op = kEnd;
  std::string key, value;
  UniqueFd fd;
};

// One message; nullopt-like `eof` when the peer closed.
Result<Message> Receive(int socket_fd, int flags, bool* eof) {
  std::vector<std::byte> buf(sizeof(Header) + kMaxKey + kMaxValue + 1);
  LB_ASSIGN_OR_RETURN(ReceivedMessage got, ReceiveWithFds(socket_fd, buf, flags));
  *eof = got.bytes == 0;
  Message m;
  if (*eof) return m;
  Header h;
  if (got.truncated || got.bytes < sizeof h) return Malformed("keeper: truncated message");
  std::memcpy(&h, buf.data(), sizeof h);
  if (h.magic != kMagic || h.op < kPut || h.op > kEnd || got.fds.size() > 1 ||
      got.bytes != sizeof h + h.key_len + h.value_len) {
    return Malformed("keeper: malformed message");
  }
  m.op = static_cast<Op>(h.op);
  const char* p = reinterpret_cast<const char*>(buf.data()) + sizeof h;
  m.key.assign(p, h.key_len);
  m.value.assign(p + h.key_len, h.value_len);
  if (!got.fds.empty()) m.fd = std::move(got.fds[0]);
  return m;
}

}  // namespace

Status FdKeeper::SendAll(int socket_fd) const {
  for (const auto& [key, entry] : entries_) {
    LB_RETURN_IF_ERROR(Send(socket_fd, kPut, key, entry.value, entry.fd.get()));
  }
  return Send(socket_fd, kEnd, "", "", -1);
}

Result<bool> FdKeeper::ReceiveOne(int socket_fd, int flags) {
  bool eof = false;
  LB_ASSIGN_OR_RETURN(Message m, Receive(socket_fd, flags, &eof));
  if (eof) return false;
  if (m.op == kPut) {
    entries_[m.key] = KeptEntry{std::move(m.value), std::move(m.fd)};
  } else if (m.op == kDrop) {
    auto it = entries_.find(m.key);
    if (it != entries_.end()) entries_.erase(it);
  }
  return true;
}

Result<bool> FdKeeper::Drain(int socket_fd) {
  for (;;) {
    Result<bool> more = ReceiveOne(socket_fd, MSG_DONTWAIT);
    if (!more.ok()) {
      if (more.status().errno_value() == EAGAIN) return true;
      // A malformed message is dropped; the worker is ours, so it is a bug worth a log only.
      if (more.status().code() == StatusCode::kMalformed) continue;
      return more.status();
    }
    if (!*more) return false;
  }
}

Status FdKeeper::DrainToEnd(int socket_fd) {
  for (;;) {
    Result<bool> more = ReceiveOne(socket_fd, 0);
    if (!more.ok()) {
      if (more.status().code() == StatusCode::kMalformed) continue;
      // ECONNRESET: the worker died; what it sent before is read already.
      if (more.status().errno_value() == ECONNRESET) return Status();
      return more.status();
    }
    if (!*more) return Status();
  }
}

Result<KeeperClient> KeeperClient::Connect(UniqueFd socket_fd) {
  KeeperClient client;
  for (;;) {
    bool eof = false;
    LB_ASSIGN_OR_RETURN(Message m, Receive(socket_fd.get(), 0, &eof));
    if (eof) return IoError("keeper: the supervisor closed before the end of the entries");
    if (m.op == kEnd) break;
    if (m.op == kPut) client.initial_[m.key] = KeptEntry{std::move(m.value), std::move(m.fd)};
  }
  client.socket_ = std::move(socket_fd);
  return client;
}

Status KeeperClient::Put(std::string_view key, std::string_view value, int fd) const {
  if (!socket_.valid()) return Status();
  return Send(socket_.get(), kPut, key, value, fd);
}

Status KeeperClient::Drop(std::string_view key) const {
  if (!socket_.valid()) return Status();
  return Send(socket_.get(), kDrop, key, "", -1);
}

}  // namespace lazyblob
