// KernelSimulator, device side: the commands the daemon writes (copen, cread, restore),
// checked the way fs/cachefiles/ondemand.c checks them. Internal to KernelSimulator.
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/aligned_buffer.h"
#include "transport/kernel_simulator_state.h"
#include "transport/message_encoder.h"

namespace lazyblob {
namespace {

// kstrtoul/kstrtol-like: base 0 (0x.., 0..), the whole string, no overflow.
template <typename T>
bool ParseKernelInt(std::string_view text, T* out) {
  std::string s(text);
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  if constexpr (std::is_unsigned_v<T>) {
    if (s[0] == '-' || s[0] == '+') return false;
  }
  errno = 0;
  char* end = nullptr;
  if constexpr (std::is_unsigned_v<T>) {
    unsigned long long v = std::strtoull(s.c_str(), &end, 0);
    if (errno != 0 || *end != '\0') return false;
    *out = static_cast<T>(v);
  } else {
    long long v = std::strtoll(s.c_str(), &end, 0);
    if (errno != 0 || *end != '\0') return false;
    *out = static_cast<T>(v);
  }
  return true;
}

}  // namespace

Status KernelSimulator::State::ApplySize(Object& obj, std::uint64_t size) {
  if (obj.sized && obj.size != size) {
    Violation("copen size " + std::to_string(size) + " for '" + obj.cookie_key +
              "' differs from the earlier " + std::to_string(obj.size) + "; cached data dropped");
    if (::ftruncate(obj.check_fd.get(), 0) < 0) return Status::FromErrno(errno, "ftruncate");
  }
  struct stat st;
  if (::fstat(obj.check_fd.get(), &st) < 0) return Status::FromErrno(errno, "fstat");
  if (!obj.sized && static_cast<std::uint64_t>(st.st_size) != obj.created_size) {
    // The kernel attaches the cache file to the anon fd only once the copen is processed:
    // earlier writes fail with ENOBUFS (tests/e2e/KERNEL_FACTS.md (b)). Here they landed;
    // they are dropped, and the daemon is told.
    Violation("the anon fd of '" + obj.cookie_key +
              "' was written before its copen was processed (the kernel refuses such writes "
              "with ENOBUFS); the bytes are dropped");
    if (::ftruncate(obj.check_fd.get(), static_cast<off_t>(obj.created_size)) < 0) {
      return Status::FromErrno(errno, "ftruncate");
    }
    st.st_size = static_cast<off_t>(obj.created_size);
  }
  std::uint64_t want = AlignUp(size);
  if (static_cast<std::uint64_t>(st.st_size) != want) {
    // A file left by an earlier mount with another size: the kernel drops its data.
    if (!obj.sized && st.st_size != 0 && ::ftruncate(obj.check_fd.get(), 0) < 0) {
      return Status::FromErrno(errno, "ftruncate");
    }
    if (::ftruncate(obj.check_fd.get(), static_cast<off_t>(want)) < 0) {
      return Status::FromErrno(errno, "ftruncate " + obj.path);
    }
  }
  obj.size = size;
  obj.sized = true;
  return Status::Ok();
}

// ---- Commands (mu held) ----

void KernelSimulator::State::HandleCommand(std::string_view cmd) {
  if (auto nl = cmd.find('\n'); nl != std::string_view::npos) cmd = cmd.substr(0, nl);
  if (cmd.find('\0') != std::string_view::npos) {
    Violation("command with a NUL byte (EINVAL)");
    return;
  }
  std::string_view verb = cmd.substr(0, cmd.find(' '));
  std::string_view args = verb.size() < cmd.size() ? cmd.substr(verb.size() + 1) : "";
  while (!args.empty() && args.front() == ' ') args.remove_prefix(1);
  if (verb == "copen") {
    HandleCopen(args);
  } else if (verb == "cread") {
    HandleCread(args);
  } else if (verb == "restore") {
    HandleRestore();
  } else {
    Violation("unknown command '" + std::string(cmd.substr(0, 64)) + "' (EOPNOTSUPP)");
  }
}

void KernelSimulator::State::HandleCopen(std::string_view args) {
  auto comma = args.find(',');
  std::uint32_t id = 0;
  if (comma == std::string_view::npos || !ParseKernelInt(args.substr(0, comma), &id)) {
    Violation("malformed copen '" + std::string(args.substr(0, 64)) + "' (EINVAL)");
    return;
  }
  auto it = outstanding.find(id);
  if (it == outstanding.end() || it->second->op != CacheOpcode::kOpen) {
    Violation("copen of unknown or answered msg_id " + std::to_string(id) + " (EINVAL)");
    return;
  }
  std::shared_ptr<Request> req = it->second;
  outstanding.erase(it);
  std::shared_ptr<Object> obj = req->obj;
  std::int64_t size = 0;
  int error = 0;
  if (!ParseKernelInt(args.substr(comma + 1), &size)) {
    Violation("copen " + std::to_string(id) + " with a malformed size (mount: ENOBUFS)");
    error = ENOBUFS;
  } else if (size < 0) {
    if (size < -4095) Violation("copen " + std::to_string(id) + " with a bad errno (EINVAL)");
    error = EIO;  // the mount sees EIO whatever errno the daemon gave
  } else if (Status s = ApplySize(*obj, static_cast<std::uint64_t>(size)); !s.ok()) {
    Violation("simulator could not size the cache file: " + s.ToString());
    error = EIO;
  }
  if (error != 0) {
    Finish(*req, error);
    obj->state = ObjState::kDead;
    FailObjectRequests(obj, EIO);
    if (auto o = objects.find(obj->path); o != objects.end() && o->second == obj) objects.erase(o);
    return;
  }
  bool reopened = obj->state == ObjState::kReopening;
  obj->state = ObjState::kOpen;
  Finish(*req, 0);
  for (auto& [rid, r] : outstanding) {  // READs held while the object was reopening
    if (r->obj == obj && r->op == CacheOpcode::kRead) {
      SendRead(*r);
      if (reopened && r->redeliver) ++counters.reads_redelivered;
      r->redeliver = false;
    }
  }
}

void KernelSimulator::State::HandleCread(std::string_view args) {
  std::uint32_t id = 0;
  if (!ParseKernelInt(args, &id)) {
    Violation("malformed cread '" + std::string(args.substr(0, 64)) + "' (EINVAL)");
    return;
  }
  auto it = outstanding.find(id);
  if (it != outstanding.end() && it->second->op == CacheOpcode::kRead) {
    std::shared_ptr<Request> r = it->second;
    outstanding.erase(it);
    ++counters.reads_completed;
    Finish(*r, 0);
    return;
  }
  if (cancelled.erase(id) != 0) {
    ++counters.late_completions;  // the kernel answers EINVAL; a harmless race with CLOSE
    return;
  }
  Violation("READ completion of unknown or completed msg_id " + std::to_string(id) + " (EINVAL)");
}

void KernelSimulator::State::HandleRestore() {
  ++counters.restores;
  out.clear();  // unread frames: re-sent below, as the kernel re-marks every request NEW
  Frame marker;
  marker.session = session;
  marker.bytes.resize(kSimRestoreMarker.size());
  std::memcpy(marker.bytes.data(), kSimRestoreMarker.data(), kSimRestoreMarker.size());
  out.push_back(std::move(marker));
  std::vector<std::shared_ptr<Request>> reopen;
  for (auto& [id, r] : outstanding) {
    if (r->op == CacheOpcode::kOpen) reopen.push_back(r);  // unanswered OPENs: same msg_id
  }
  for (auto& [path, obj] : objects) {
    if (obj->state != ObjState::kOpen) continue;
    // 6.12 (KERNEL_FACTS (l)): an object with READs pending is reopened now; an idle one
    // stays closed until its next READ (ReopenForRead).
    bool pending_read = false;
    for (auto& [rid, r] : outstanding) {
      if (r->obj == obj && r->op == CacheOpcode::kRead) {
        pending_read = true;
        r->redeliver = true;
      }
    }
    if (!pending_read) {
      obj->state = ObjState::kClosed;
      continue;
    }
    obj->state = ObjState::kReopening;
    auto id = AllocMsgId();
    if (!id.ok()) {
      Violation("restore: " + id.status().ToString());
      continue;
    }
    auto r = std::make_shared<Request>();
    r->msg_id = *id;
    r->op = CacheOpcode::kOpen;
    r->obj = obj;
    outstanding[*id] = r;
    reopen.push_back(r);
  }
  for (auto& r : reopen) {
    if (Status s = SendOpen(*r); !s.ok()) Violation("restore: " + s.ToString());
  }
  out_cv.Signal();
}

Status KernelSimulator::State::ReopenForRead(const std::shared_ptr<Object>& obj) {
  LB_ASSIGN_OR_RETURN(std::uint32_t id, AllocMsgId());
  auto r = std::make_shared<Request>();
  r->msg_id = id;
  r->op = CacheOpcode::kOpen;
  r->obj = obj;
  obj->state = ObjState::kReopening;
  outstanding[id] = r;
  return SendOpen(*r);
}

// ---- Threads ----

}  // namespace lazyblob
