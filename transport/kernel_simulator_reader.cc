// KernelSimulator, reader side: what an EROFS mount does with the cache (Mount, Read,
// Unmount). The device side is kernel_simulator.cc.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/aligned_buffer.h"
#include "transport/kernel_simulator.h"
#include "transport/kernel_simulator_state.h"
#include "transport/message_encoder.h"

namespace lazyblob {
namespace {

using State = KernelSimulator::State;  // NOLINT: internal alias

std::string Hex64(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

Status ErrnoStatus(int err, const std::string& what) { return Status::FromErrno(err, what); }

// Waits for `r` to be answered.
Status Wait(State& s, const std::shared_ptr<State::Request>& r, const std::string& what)
    LB_REQUIRES(s.mu) {
  const auto deadline = std::chrono::steady_clock::now() + s.timeout();
  while (!r->done) {
    if (!s.cv.WaitUntil(&s.mu, deadline) && !r->done) {
      return ErrnoStatus(ETIMEDOUT, what + ": no answer from the daemon");
    }
  }
  if (r->error != 0) {
    if (r->error == EIO) ++s.counters.eios;
    return ErrnoStatus(r->error, what);
  }
  return Status::Ok();
}

}  // namespace

Result<SimMount> KernelSimulator::Mount(std::string_view volume_key, std::string_view cookie_key,
                                        const std::string& source_image_path) {
  if (volume_key.empty() || volume_key.find('\0') != std::string_view::npos) {
    return InvalidArgument("volume key must be non-empty without NUL");
  }
  if (cookie_key.empty() || volume_key.size() > 255 || cookie_key.size() > 255) {
    return InvalidArgument("cookie key must be 1..255 bytes, volume key at most 255");
  }
  State& s = *s_;
  std::string path = s.opt.cache_dir + "/D" + Hex64(volume_key) + Hex64(cookie_key);
  MutexLock lk(&s.mu);
  if (s.session == 0) return ErrnoStatus(ENOBUFS, "mount: no cache device is bound");
  std::shared_ptr<State::Object> obj;
  if (auto it = s.objects.find(path); it != s.objects.end()) {
    obj = it->second;
    const auto deadline = std::chrono::steady_clock::now() + s.timeout();
    while (obj->state == State::ObjState::kOpening && s.cv.WaitUntil(&s.mu, deadline)) {
    }
    if (obj->state == State::ObjState::kOpening) return ErrnoStatus(ETIMEDOUT, "mount");
    if (obj->state == State::ObjState::kDead) return ErrnoStatus(EIO, "mount (shared OPEN)");
  } else {
    obj = std::make_shared<State::Object>();
    obj->volume_key = volume_key;
    obj->cookie_key = cookie_key;
    obj->path = path;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus(errno, "create cache file " + path);
    obj->check_fd = UniqueFd(fd);
    struct stat created;
    if (::fstat(fd, &created) < 0) return ErrnoStatus(errno, "fstat " + path);
    obj->created_size = static_cast<std::uint64_t>(created.st_size);
    if (!source_image_path.empty()) {
      int sfd = ::open(source_image_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (sfd < 0) return ErrnoStatus(errno, "open source image " + source_image_path);
      obj->source_fd = UniqueFd(sfd);
    }
    LB_ASSIGN_OR_RETURN(std::uint32_t id, s.AllocMsgId());
    auto req = std::make_shared<State::Request>();
    req->msg_id = id;
    req->op = CacheOpcode::kOpen;
    req->obj = obj;
    LB_RETURN_IF_ERROR(s.SendOpen(*req));
    s.outstanding[id] = req;
    s.objects[path] = obj;
    LB_RETURN_IF_ERROR(Wait(s, req, "mount " + std::string(cookie_key)));
  }
  ++obj->mounts;
  SimMount m{s.next_mount_id++, obj->size};
  s.mounts[m.id] = obj;
  return m;
}

Status KernelSimulator::Unmount(const SimMount& mount) {
  State& s = *s_;
  MutexLock lk(&s.mu);
  auto it = s.mounts.find(mount.id);
  if (it == s.mounts.end()) return InvalidArgument("unknown mount " + std::to_string(mount.id));
  std::shared_ptr<State::Object> obj = it->second;
  s.mounts.erase(it);
  if (--obj->mounts > 0 || obj->state == State::ObjState::kDead) return Status::Ok();
  if (s.session != 0 && obj->state == State::ObjState::kOpen) {
    auto id = s.AllocMsgId();  // a CLOSE takes an id until it is read (then needs no reply)
    if (id.ok()) {
      State::Frame f;
      f.session = s.session;
      f.bytes = MessageEncoder::Close(*id, obj->object_id);
      s.out.push_back(std::move(f));
      s.out_cv.Signal();
      ++s.counters.closes_sent;
    }
  }
  obj->state = State::ObjState::kDead;
  s.FailObjectRequests(obj, EIO);  // cachefiles_ondemand_clean_object
  if (auto o = s.objects.find(obj->path); o != s.objects.end() && o->second == obj) {
    s.objects.erase(o);
  }
  return Status::Ok();
}

namespace {

// Finds the in-flight READ covering `pos` or sends a new one, readahead-shaped, ending at
// `data_at` (where cached data resumes) at the latest. mu held.
Result<std::shared_ptr<State::Request>> RequestRange(State& s,
                                                     const std::shared_ptr<State::Object>& obj,
                                                     std::uint64_t pos, std::uint64_t data_at)
    LB_REQUIRES(s.mu) {
  if (obj->state == State::ObjState::kDead) {
    return ErrnoStatus(s.session == 0 ? ENOBUFS : EIO, "read: the object is gone");
  }
  if (obj->state == State::ObjState::kClosed) {
    LB_RETURN_IF_ERROR(s.ReopenForRead(obj));  // the READ below waits for its copen
  }
  std::uint64_t end = data_at;
  for (auto& [id, r] : s.outstanding) {
    if (r->obj != obj || r->op != CacheOpcode::kRead) continue;
    if (r->off <= pos && pos < r->off + r->len) return r;
    if (r->off > pos) end = std::min(end, r->off);
  }
  if (obj->ra_next == pos && obj->ra_size != 0) {
    obj->ra_size = obj->ra_size < 16 * 1024 ? 16 * 1024 : obj->ra_size * 2;
    obj->ra_size = std::min<std::uint64_t>(obj->ra_size, s.opt.max_readahead_bytes);
  } else {
    obj->ra_size = kBlockSize;
  }
  end = std::min(end, pos + obj->ra_size);
  LB_ASSIGN_OR_RETURN(std::uint32_t id, s.AllocMsgId());
  auto r = std::make_shared<State::Request>();
  r->msg_id = id;
  r->op = CacheOpcode::kRead;
  r->obj = obj;
  r->off = pos;
  r->len = end - pos;
  s.outstanding[id] = r;
  obj->ra_next = end;
  ++s.counters.reads_sent;
  s.counters.read_bytes_requested += r->len;
  s.SendRead(*r);
  return r;
}

}  // namespace

Result<std::size_t> KernelSimulator::Read(const SimMount& mount, std::uint64_t offset,
                                          std::span<std::byte> out) {
  State& s = *s_;
  std::shared_ptr<State::Object> obj;
  std::uint64_t size = 0;
  {
    MutexLock lk(&s.mu);
    auto it = s.mounts.find(mount.id);
    if (it == s.mounts.end()) return InvalidArgument("unknown mount " + std::to_string(mount.id));
    obj = it->second;
    if (obj->state == State::ObjState::kDead) {
      return ErrnoStatus(ENOBUFS, "read: the cache was withdrawn");
    }
    size = obj->size;  // a reopen may change it (with a violation); read it under mu
  }
  if (offset >= size || out.empty()) return std::size_t{0};
  const std::uint64_t end = std::min<std::uint64_t>(offset + out.size(), size);
  const std::uint64_t file_end = AlignUp(size);
  const int fd = obj->check_fd.get();
  std::uint64_t pos = AlignDown(offset);
  const std::uint64_t limit = AlignUp(end);
  while (pos < limit) {
    off_t d = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (d == static_cast<off_t>(pos)) {
      off_t h = ::lseek(fd, static_cast<off_t>(pos), SEEK_HOLE);
      if (h <= d) return ErrnoStatus(errno, "lseek SEEK_HOLE");
      pos = static_cast<std::uint64_t>(h);
      continue;
    }
    if (d < 0 && errno != ENXIO) return ErrnoStatus(errno, "lseek SEEK_DATA");
    std::uint64_t data_at = d < 0 ? file_end : std::min<std::uint64_t>(d, file_end);
    std::shared_ptr<State::Request> r;
    std::string what;
    {
      MutexLock lk(&s.mu);
      LB_ASSIGN_OR_RETURN(r, RequestRange(s, obj, pos, data_at));
      what = "READ msg_id " + std::to_string(r->msg_id) + " [" + std::to_string(r->off) + ", +" +
             std::to_string(r->len) + ")";
      LB_RETURN_IF_ERROR(Wait(s, r, what));
    }
    // The kernel re-checks the range after the completion: a hole left means EIO.
    off_t hd = ::lseek(fd, static_cast<off_t>(r->off), SEEK_DATA);
    off_t hh = hd == static_cast<off_t>(r->off) ? ::lseek(fd, hd, SEEK_HOLE) : -1;
    if (hh < static_cast<off_t>(std::min(r->off + r->len, file_end))) {
      MutexLock lk2(&s.mu);
      ++s.counters.eios;
      return ErrnoStatus(EIO, what + " completed with a hole left in the range");
    }
    struct stat st;
    if (::fstat(fd, &st) == 0 && static_cast<std::uint64_t>(st.st_size) > file_end) {
      MutexLock lk2(&s.mu);
      s.Violation("cache file of '" + obj->cookie_key + "' grew past round_up(size, 4 KiB) to " +
                  std::to_string(st.st_size));
    }
    pos = std::max(pos, r->off + r->len);
  }
  const std::size_t n = static_cast<std::size_t>(end - offset);
  std::size_t got = 0;
  while (got < n) {
    ssize_t k = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return ErrnoStatus(k < 0 ? errno : EIO, "pread cache file");
    got += static_cast<std::size_t>(k);
  }
  if (obj->source_fd) {
    std::vector<std::byte> want(n);
    ssize_t k = ::pread(obj->source_fd.get(), want.data(), n, static_cast<off_t>(offset));
    if (k != static_cast<ssize_t>(n) || std::memcmp(want.data(), out.data(), n) != 0) {
      MutexLock lk(&s.mu);
      ++s.counters.data_mismatches;
      return Corruption("bytes at [" + std::to_string(offset) + ", +" + std::to_string(n) +
                        ") of '" + obj->cookie_key + "' differ from the source image");
    }
  }
  return n;
}

SimCounters KernelSimulator::counters() const {
  MutexLock lk(&s_->mu);
  return s_->counters;
}

std::vector<std::string> KernelSimulator::violations() const {
  MutexLock lk(&s_->mu);
  return {s_->violations.begin(), s_->violations.end()};
}

std::size_t KernelSimulator::pending_requests() const {
  MutexLock lk(&s_->mu);
  return s_->outstanding.size();
}

}  // namespace lazyblob
