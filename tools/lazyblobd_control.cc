#include "tools/lazyblobd_control.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace lazyblob {
namespace {

// A client has this long to send each message of a conversation.
constexpr int kMessageTimeoutMs = 120'000;

Result<std::uint64_t> ParseU64(const std::string& text, const char* what) {
  try {
    std::size_t used = 0;
    const unsigned long long v = std::stoull(text, &used);
    if (used == text.size()) return static_cast<std::uint64_t>(v);
  } catch (const std::exception&) {
  }
  return InvalidArgument(std::string("control: bad ") + what + " '" + text + "'");
}

}  // namespace

Result<UniqueFd> ListenControl(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidArgument("control socket path '" + path + "' is empty or too long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (probe && ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    return Busy("another lazyblobd serves the control socket " + path);
  }
  ::unlink(path.c_str());  // a stale socket of a daemon that is gone
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno(errno, "socket");
  // Created 0600 from the start: no window in which another user could connect.
  const mode_t old = ::umask(0177);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old);
  if (bound != 0) return Status::FromErrno(bind_errno, "bind the control socket " + path);
  if (::listen(fd.get(), 64) != 0) return Status::FromErrno(errno, "listen on " + path);
  return fd;
}

Result<std::unique_ptr<ControlServer>> ControlServer::Start(int listen_fd, FanotifyMounts* mounts) {
  std::unique_ptr<ControlServer> s(new ControlServer(listen_fd, mounts));
  s->wake_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->wake_fd_) return Status::FromErrno(errno, "eventfd");
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

ControlServer::~ControlServer() { Stop(); }

void ControlServer::Stop() {
  if (stopping_.exchange(true)) return;
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void ControlServer::Loop() {
  while (!stopping_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (stopping_.load()) break;
    if ((fds[0].revents & POLLIN) == 0) continue;
    UniqueFd conn(::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC));
    if (conn) Serve(conn.get());
  }
}

void ControlServer::Serve(int conn) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
    SendControl(conn, ErrorReply(Status(StatusCode::kPermissionDenied,
                                        "lazyblobd's control socket serves root only")))
        .IgnoreError();
    return;
  }
  while (!stopping_.load()) {
    UniqueFd passed;
    Result<ControlMessage> request = ReceiveControl(conn, kMessageTimeoutMs, &passed);
    if (!request.ok()) return;  // closed, timed out or garbled: the conversation ends
    ControlMessage reply;
    try {
      reply = Handle(*request, std::move(passed));
    } catch (const std::exception& e) {
      reply = ErrorReply(Internal(std::string("control: ") + e.what()));
    }
    if (!SendControl(conn, reply).ok()) return;
  }
}

ControlMessage ControlServer::Handle(const ControlMessage& request, UniqueFd passed_fd) {
  const std::string& verb = request.verb;
  if (verb == "prepare") {
    if (request.Get("id").empty()) return ErrorReply(InvalidArgument("prepare needs an id"));
    auto prepared =
        mounts_->Prepare(request.Get("id"), request.GetAll("device"), request.Get("dir"));
    if (!prepared.ok()) return ErrorReply(prepared.status());
    ControlMessage reply = OkReply();
    reply.Add("token", std::to_string(prepared->token)).Add("source", prepared->paths[0]);
    for (std::size_t i = 1; i < prepared->paths.size(); ++i)
      reply.Add("device", prepared->paths[i]);
    return reply;
  }
  if (verb == "mounted" || verb == "abort") {
    auto token = ParseU64(request.Get("token"), "token");
    if (!token.ok()) return ErrorReply(token.status());
    if (verb == "abort") {
      Status s = mounts_->Abort(*token);
      return s.ok() ? OkReply() : ErrorReply(s);
    }
    auto mnt_id = ParseU64(request.Get("mnt_id"), "mount id");
    if (!mnt_id.ok()) return ErrorReply(mnt_id.status());
    Status s = mounts_->Mounted(*token, request.Get("dir"), *mnt_id, std::move(passed_fd));
    return s.ok() ? OkReply() : ErrorReply(s);
  }
  if (verb == "umount" || verb == "unmounted") {
    auto mnt_id = ParseU64(request.Get("mnt_id"), "mount id");
    if (!mnt_id.ok()) return ErrorReply(mnt_id.status());
    if (verb == "unmounted") {
      Status s = mounts_->Unmounted(*mnt_id);
      return s.ok() ? OkReply() : ErrorReply(s);
    }
    auto dir = mounts_->FindMount(*mnt_id);
    if (!dir.ok()) return ErrorReply(dir.status());
    ControlMessage reply = OkReply();
    reply.Add("dir", *dir);
    return reply;
  }
  if (verb == "status") return mounts_->Describe();
  return ErrorReply(InvalidArgument("control: unknown request '" + verb + "'"));
}

}  // namespace lazyblob
