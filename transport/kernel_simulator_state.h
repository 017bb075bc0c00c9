// Internal to KernelSimulator (kernel_simulator.cc: device side; kernel_simulator_reader.cc:
// reader side). Not part of the public API.
//
// Thread-safety: every field below `mu` is guarded by it. Object::check_fd and source_fd
// are set before the object is shared and never change, so readers use them unlocked while
// holding a shared_ptr.
#ifndef LAZYBLOB_TRANSPORT_KERNEL_SIMULATOR_STATE_H_
#define LAZYBLOB_TRANSPORT_KERNEL_SIMULATOR_STATE_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/cache_messages.h"
#include "core/mutex.h"
#include "core/unique_fd.h"
#include "transport/kernel_simulator.h"

namespace lazyblob {

// First frame after a `restore` is processed: SimDevice::Restore discards everything before
// it (those requests are re-sent after it). Not a kernel message (shorter than a header).
inline constexpr std::string_view kSimRestoreMarker = "LB-RESTORED";
// Greeting of a Listen() connection: accepted, or refused because a device is attached.
inline constexpr std::string_view kSimHelloOk = "LB-OK";
inline constexpr std::string_view kSimHelloBusy = "LB-BUSY";

struct KernelSimulator::State {
  // kClosed: closed by a `restore` while idle; reopened (a new OPEN) at its next READ.
  enum class ObjState { kOpening, kOpen, kReopening, kClosed, kDead };

  struct Object {
    std::string volume_key, cookie_key, path;
    UniqueFd check_fd;   // O_RDONLY, buffered: SEEK_DATA/SEEK_HOLE and pread
    UniqueFd source_fd;  // optional source image
    ObjState state = ObjState::kOpening;
    std::uint32_t object_id = 0;
    std::uint64_t size = 0;
    bool sized = false;  // a copen gave a size once
    // The cache file's size when the object was created (non-zero: an earlier mount's file).
    std::uint64_t created_size = 0;
    int mounts = 0;
    std::uint64_t ra_next = UINT64_MAX;  // offset after the last READ (sequential detection)
    std::uint64_t ra_size = 0;
  };

  struct Request {
    std::uint32_t msg_id = 0;
    CacheOpcode op = CacheOpcode::kOpen;
    std::shared_ptr<Object> obj;
    std::uint64_t off = 0, len = 0;
    bool done = false;
    bool redeliver = false;  // a READ pending at a `restore`: re-sent after the reopen
    int error = 0;           // positive errno for the waiter
  };

  struct Frame {
    std::uint64_t session = 0;
    std::vector<std::byte> bytes;
    UniqueFd fd;
  };

  KernelSimulatorOptions opt;

  // Guards everything below, and the mutable fields of Object and Request.
  mutable Mutex mu;
  CondVar cv;      // request completions, mount state changes
  CondVar out_cv;  // frames to send, shutdown
  bool stopping LB_GUARDED_BY(mu) = false;

  // Device session: 0 = none attached.
  std::uint64_t session LB_GUARDED_BY(mu) = 0;
  std::uint64_t last_session LB_GUARDED_BY(mu) = 0;
  std::shared_ptr<UniqueFd> conn LB_GUARDED_BY(mu);
  UniqueFd listen_fd LB_GUARDED_BY(mu);
  UniqueFd wake_fd;  // eventfd: wakes the service thread

  std::uint32_t next_msg_id LB_GUARDED_BY(mu) = 0;
  std::uint32_t next_object_id LB_GUARDED_BY(mu) = 1;
  std::map<std::uint32_t, std::shared_ptr<Request>> outstanding LB_GUARDED_BY(mu);  // by msg_id
  std::set<std::uint32_t> cancelled LB_GUARDED_BY(mu);  // READ ids cancelled by CLOSE/withdrawal
  std::map<std::string, std::shared_ptr<Object>> objects LB_GUARDED_BY(mu);   // by path: live
  std::map<std::uint64_t, std::shared_ptr<Object>> mounts LB_GUARDED_BY(mu);  // by SimMount::id
  std::uint64_t next_mount_id LB_GUARDED_BY(mu) = 1;
  std::deque<Frame> out LB_GUARDED_BY(mu);

  SimMangle mangle LB_GUARDED_BY(mu) = SimMangle::kNone;  // applied to the next OPEN/READ
  SimCounters counters LB_GUARDED_BY(mu);
  std::deque<std::string> violations LB_GUARDED_BY(mu);

  std::thread service_thread, sender_thread;

  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(opt.reply_timeout_ms);
  }

  // All below: mu held.
  void Violation(std::string what) LB_REQUIRES(mu);
  Result<std::uint32_t> AllocMsgId() LB_REQUIRES(mu);
  std::uint32_t AllocObjectId() LB_REQUIRES(mu);
  // Sends (queues) the OPEN for `r` with a fresh object id and anon fd.
  Status SendOpen(Request& r) LB_REQUIRES(mu);
  // A READ for an object a restore left closed: sends its OPEN (new msg_id, object_id, fd).
  Status ReopenForRead(const std::shared_ptr<Object>& obj) LB_REQUIRES(mu);
  void SendRead(const Request& r) LB_REQUIRES(mu);
  void Finish(Request& r, int error) LB_REQUIRES(mu);
  void FailObjectRequests(const std::shared_ptr<Object>& obj, int error) LB_REQUIRES(mu);
  void Withdraw() LB_REQUIRES(mu);
  void HandleCommand(std::string_view cmd) LB_REQUIRES(mu);
  void HandleCopen(std::string_view args) LB_REQUIRES(mu);
  void HandleCread(std::string_view args) LB_REQUIRES(mu);
  void HandleRestore() LB_REQUIRES(mu);
  Status ApplySize(Object& obj, std::uint64_t size) LB_REQUIRES(mu);

  // Threads (mu not held on entry).
  void ServiceLoop() LB_EXCLUDES(mu);
  void SenderLoop() LB_EXCLUDES(mu);
  void Wake();
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_KERNEL_SIMULATOR_STATE_H_
