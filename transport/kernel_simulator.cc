// KernelSimulator, device side: opening, the device socket and the two internal threads.
// The command handlers (copen, cread, restore) are kernel_simulator_commands.cc, the reader
// side kernel_simulator_reader.cc.
#include "transport/kernel_simulator.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <type_traits>

#include "core/aligned_buffer.h"
#include "transport/kernel_simulator_state.h"
#include "transport/message_encoder.h"

namespace lazyblob {
namespace {

constexpr std::size_t kMaxViolations = 256;

// The cache dir must behave like the kernel's: cachefiles refuses tmpfs at bind
// (EOPNOTSUPP), and the anon fds are O_DIRECT files whose filesystem refuses an unaligned
// buffer with EINVAL. tmpfs (Linux >= 6.6) and some stacked filesystems accept O_DIRECT
// but ignore its alignment rules, which would let the simulator pass writes the kernel
// refuses. So the rule is probed here, not assumed, and such a directory is refused.
Status CheckCacheDir(const std::string& dir) {
  struct statfs fs;
  if (::statfs(dir.c_str(), &fs) != 0) return Status::FromErrno(errno, "statfs " + dir);
  if (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC) {
    return Status(StatusCode::kUnsupported,
                  "cache dir " + dir +
                      " is on tmpfs/ramfs, which cachefiles refuses at bind; use a directory "
                      "on ext4 or xfs (e.g. under /var/tmp)",
                  EOPNOTSUPP);
  }
  const std::string probe = dir + "/.o_direct_probe." + std::to_string(::getpid());
  UniqueFd fd(::open(probe.c_str(), O_CREAT | O_WRONLY | O_DIRECT | O_CLOEXEC, 0600));
  if (!fd) {
    if (errno == EINVAL) {
      return Status(
          StatusCode::kUnsupported,
          "cache dir " + dir + " does not support O_DIRECT; use a directory on ext4 or xfs",
          EINVAL);
    }
    return Status::FromErrno(errno, "create " + probe);
  }
  ::unlink(probe.c_str());
  AlignedBuffer block(2 * kBlockSize);
  const ssize_t n = ::pwrite(fd.get(), block.data() + 8, kBlockSize, 0);
  const int err = errno;
  if (n >= 0 || err != EINVAL) {
    return Status(
        StatusCode::kUnsupported,
        "cache dir " + dir + " does not enforce O_DIRECT buffer alignment (an unaligned write " +
            (n >= 0 ? std::string("succeeded") : "failed with " + std::string(std::strerror(err))) +
            "), as the kernel's cache files do; use a directory on ext4 or xfs",
        EOPNOTSUPP);
  }
  return Status::Ok();
}

}  // namespace

Status KernelSimulatorOptions::Validate() const {
  if (cache_dir.empty()) return InvalidArgument("KernelSimulatorOptions.cache_dir is empty");
  if (max_readahead_bytes < kBlockSize || max_readahead_bytes > (1u << 20) ||
      max_readahead_bytes % kBlockSize != 0) {
    return InvalidArgument("max_readahead_bytes must be a multiple of 4 KiB in [4 KiB, 1 MiB]");
  }
  if (max_msg_id < 1) return InvalidArgument("max_msg_id must be >= 1");
  if (reply_timeout_ms == 0) return InvalidArgument("reply_timeout_ms must be > 0");
  if (attach_delay_ms >= reply_timeout_ms) {
    return InvalidArgument("attach_delay_ms must be below reply_timeout_ms");
  }
  return Status::Ok();
}

Result<std::unique_ptr<KernelSimulator>> KernelSimulator::Open(
    const KernelSimulatorOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  LB_RETURN_IF_ERROR(CheckCacheDir(options.cache_dir));

  auto state = std::make_unique<State>();
  state->opt = options;
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return Status::FromErrno(errno, "eventfd");
  state->wake_fd = UniqueFd(efd);
  std::unique_ptr<KernelSimulator> sim(new KernelSimulator(std::move(state)));
  State* s = sim->s_.get();
  s->service_thread = std::thread([s] { s->ServiceLoop(); });
  s->sender_thread = std::thread([s] { s->SenderLoop(); });
  return sim;
}

KernelSimulator::KernelSimulator(std::unique_ptr<State> state) : s_(std::move(state)) {}

KernelSimulator::~KernelSimulator() {
  {
    MutexLock lk(&s_->mu);
    s_->stopping = true;
    s_->Withdraw();
    s_->out_cv.SignalAll();
    s_->cv.SignalAll();
  }
  s_->Wake();
  if (s_->service_thread.joinable()) s_->service_thread.join();
  if (s_->sender_thread.joinable()) s_->sender_thread.join();
}

void KernelSimulator::MangleNext(SimMangle mangle) {
  MutexLock lk(&s_->mu);
  s_->mangle = mangle;
}

Result<UniqueFd> KernelSimulator::OpenDevice() {
  MutexLock lk(&s_->mu);
  if (s_->session != 0) {
    return Status(StatusCode::kBusy, "simulated cachefiles device is already open", EBUSY);
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    return Status::FromErrno(errno, "socketpair");
  }
  s_->session = ++s_->last_session;
  s_->conn = std::make_shared<UniqueFd>(sv[0]);
  s_->next_msg_id = 0;
  s_->next_object_id = 1;
  s_->Wake();
  return UniqueFd(sv[1]);
}

Status KernelSimulator::Listen(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("socket path too long: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Status::FromErrno(errno, "socket");
  ::unlink(socket_path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    return Status::FromErrno(errno, "bind " + socket_path);
  }
  if (::listen(fd.get(), 8) < 0) return Status::FromErrno(errno, "listen " + socket_path);
  MutexLock lk(&s_->mu);
  if (s_->listen_fd) return InvalidArgument("KernelSimulator::Listen called twice");
  s_->listen_fd = std::move(fd);
  s_->Wake();
  return Status::Ok();
}

bool KernelSimulator::device_attached() const {
  MutexLock lk(&s_->mu);
  return s_->session != 0;
}

// ---- State: helpers (mu held) ----

void KernelSimulator::State::Wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd.get(), &one, sizeof one);
}

void KernelSimulator::State::Violation(std::string what) {
  ++counters.protocol_violations;
  violations.push_back(std::move(what));
  if (violations.size() > kMaxViolations) violations.pop_front();
}

Result<std::uint32_t> KernelSimulator::State::AllocMsgId() {
  if (outstanding.size() > opt.max_msg_id) {
    return Status(StatusCode::kBusy, "all msg ids in use", EBUSY);
  }
  std::uint32_t id = next_msg_id > opt.max_msg_id ? 0 : next_msg_id;
  while (outstanding.count(id) != 0) id = id >= opt.max_msg_id ? 0 : id + 1;
  next_msg_id = id + 1;  // wraps to 0 at UINT32_MAX; checked against max_msg_id above
  cancelled.erase(id);
  return id;
}

std::uint32_t KernelSimulator::State::AllocObjectId() {
  std::set<std::uint32_t> used;
  for (auto& [path, obj] : objects) used.insert(obj->object_id);
  std::uint32_t id = next_object_id;
  for (;;) {
    if (id < 1 || id > static_cast<std::uint32_t>(INT_MAX)) id = 1;
    if (used.count(id) == 0) break;
    ++id;
  }
  next_object_id = id + 1;
  return id;
}

Status KernelSimulator::State::SendOpen(Request& r) {
  Object& obj = *r.obj;
  int fd = ::open(obj.path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open cache file " + obj.path);
  obj.object_id = AllocObjectId();
  Frame f;
  f.session = session;
  f.bytes = MessageEncoder::Open(r.msg_id, obj.object_id, obj.volume_key, obj.cookie_key,
                                 static_cast<std::uint32_t>(fd));
  if (mangle == SimMangle::kOpenVolumeKeyWithoutNul) {
    // The volume key's NUL sits right before the cookie key at the end of the frame.
    f.bytes[f.bytes.size() - obj.cookie_key.size() - 1] = std::byte{'x'};
    mangle = SimMangle::kNone;
  }
  f.fd = UniqueFd(fd);
  out.push_back(std::move(f));
  out_cv.Signal();
  ++counters.opens_sent;
  return Status::Ok();
}

void KernelSimulator::State::SendRead(const Request& r) {
  if (r.obj->state != ObjState::kOpen || session == 0) return;  // held until (re)open
  Frame f;
  f.session = session;
  f.bytes = MessageEncoder::Read(r.msg_id, r.obj->object_id, r.off, r.len);
  if (mangle == SimMangle::kReadPayload17Bytes) {
    f.bytes.push_back(std::byte{0});
    const auto len = static_cast<std::uint32_t>(f.bytes.size());
    std::memcpy(f.bytes.data() + 8, &len, sizeof len);
    mangle = SimMangle::kNone;
  }
  out.push_back(std::move(f));
  out_cv.Signal();
}

void KernelSimulator::State::Finish(Request& r, int error) {
  r.done = true;
  r.error = error;
  cv.SignalAll();
}

void KernelSimulator::State::FailObjectRequests(const std::shared_ptr<Object>& obj, int error) {
  for (auto it = outstanding.begin(); it != outstanding.end();) {
    if (it->second->obj != obj) {
      ++it;
      continue;
    }
    if (it->second->op == CacheOpcode::kRead) cancelled.insert(it->first);
    Finish(*it->second, error);
    it = outstanding.erase(it);
  }
}

void KernelSimulator::State::Withdraw() {
  if (session == 0) return;
  ++counters.withdrawals;
  ::shutdown(conn->get(), SHUT_RDWR);
  conn.reset();
  session = 0;
  for (auto& [id, r] : outstanding) Finish(*r, EIO);
  outstanding.clear();
  cancelled.clear();
  for (auto& [path, obj] : objects) obj->state = ObjState::kDead;
  objects.clear();
  out.clear();
  cv.SignalAll();
}

void KernelSimulator::State::SenderLoop() {
  for (;;) {
    Frame f;
    std::shared_ptr<UniqueFd> c;
    {
      MutexLock lk(&mu);
      while (!stopping && out.empty()) out_cv.Wait(&mu);
      if (stopping) return;
      f = std::move(out.front());
      out.pop_front();
      if (f.session != session || !conn) continue;
      c = conn;
    }
    iovec iov{f.bytes.data(), f.bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
    if (f.fd) {
      msg.msg_control = cbuf;
      msg.msg_controllen = sizeof cbuf;
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      int fd = f.fd.get();
      std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    while (::sendmsg(c->get(), &msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
    // Other errors: the device is going away; the service thread sees the hang-up.
  }
}

void KernelSimulator::State::ServiceLoop() {
  std::vector<char> buf(8192);
  for (;;) {
    pollfd fds[3] = {{wake_fd.get(), POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}};
    std::shared_ptr<UniqueFd> c;
    std::uint64_t sess;
    {
      MutexLock lk(&mu);
      if (stopping) return;
      if (listen_fd) fds[1].fd = listen_fd.get();
      c = conn;
      sess = session;
      if (c) fds[2].fd = c->get();
    }
    if (::poll(fds, 3, -1) < 0) continue;
    if (fds[0].revents & POLLIN) {
      std::uint64_t v;
      [[maybe_unused]] ssize_t n = ::read(wake_fd.get(), &v, sizeof v);
    }
    if (fds[1].revents & POLLIN) {
      UniqueFd a(::accept4(fds[1].fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (a) {
        MutexLock lk(&mu);
        std::string_view hello = session != 0 ? kSimHelloBusy : kSimHelloOk;
        ::send(a.get(), hello.data(), hello.size(), MSG_NOSIGNAL);
        if (session == 0) {
          session = ++last_session;
          conn = std::make_shared<UniqueFd>(a.release());
          next_msg_id = 0;
          next_object_id = 1;
        }
      }
    }
    if (c && fds[2].revents != 0) {
      for (;;) {
        ssize_t n = ::recv(c->get(), buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && errno == EINTR) continue;
        if (n > 5 && opt.attach_delay_ms > 0 && std::string_view(buf.data(), 5) == "copen") {
          std::this_thread::sleep_for(std::chrono::milliseconds(opt.attach_delay_ms));
        }
        MutexLock lk(&mu);
        if (session != sess) break;
        if (n < 0) {
          if (errno == EAGAIN) break;
          Withdraw();
          break;
        }
        if (n == 0) {  // every copy of the daemon's end is closed
          Withdraw();
          break;
        }
        if (static_cast<std::size_t>(n) > buf.size()) {
          Violation("command longer than a page (EOPNOTSUPP)");
          continue;
        }
        HandleCommand(std::string_view(buf.data(), static_cast<std::size_t>(n)));
      }
    }
  }
}

}  // namespace lazyblob
