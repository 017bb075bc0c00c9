// Internal to KernelSimulator (kernel_simulator.cc: device side; kernel_simulator_reader.cc:
// reader side). Not part of the public API.
//
// Thread-safety: every field below `mu` is guarded by it. Object::check_fd and source_fd
// are set before the object is shared and never change, so readers use them unlocked while
// holding a shared_ptr.
#ifndef LAZYBLOB_TRANSPORT_KERNEL_SIMULATOR_STATE_H_
#define LAZYBLOB_TRANSPORT_KERNEL_SIMULATOR_STATE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/cache_messages.h"
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
  enum class ObjState { kOpening, kOpen, kReopening, kDead };

  struct Object {
    std::string volume_key, cookie_key, path;
    UniqueFd check_fd;   // O_RDONLY, buffered: SEEK_DATA/SEEK_HOLE and pread
    UniqueFd source_fd;  // optional source image
    ObjState state = ObjState::kOpening;
    std::uint32_t object_id = 0;
    std::uint64_t size = 0;
    bool sized = false;  // a copen gave a size once
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
    int error = 0;  // positive errno for the waiter
  };

  struct Frame {
    std::uint64_t session = 0;
    std::vector<std::byte> bytes;
    UniqueFd fd;
  };

  KernelSimulatorOptions opt;

  mutable std::mutex mu;
  std::condition_variable cv;      // request completions, mount state changes
  std::condition_variable out_cv;  // frames to send, shutdown
  bool stopping = false;

  // Device session: 0 = none attached.
  std::uint64_t session = 0;
  std::uint64_t last_session = 0;
  std::shared_ptr<UniqueFd> conn;
  UniqueFd listen_fd;
  UniqueFd wake_fd;  // eventfd: wakes the service thread

  std::uint32_t next_msg_id = 0;
  std::uint32_t next_object_id = 1;
  std::map<std::uint32_t, std::shared_ptr<Request>> outstanding;  // by msg_id
  std::set<std::uint32_t> cancelled;                       // READ ids cancelled by CLOSE/withdrawal
  std::map<std::string, std::shared_ptr<Object>> objects;  // by path: live objects
  std::map<std::uint64_t, std::shared_ptr<Object>> mounts;  // by SimMount::id
  std::uint64_t next_mount_id = 1;
  std::deque<Frame> out;

  SimMangle mangle = SimMangle::kNone;  // applied to the next OPEN/READ sent
  SimCounters counters;
  std::deque<std::string> violations;

  std::thread service_thread, sender_thread;

  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(opt.reply_timeout_ms);
  }

  // All below: mu held.
  void Violation(std::string what);
  Result<std::uint32_t> AllocMsgId();
  std::uint32_t AllocObjectId();
  // Sends (queues) the OPEN for `r` with a fresh object id and anon fd.
  Status SendOpen(Request& r);
  void SendRead(const Request& r);
  void Finish(Request& r, int error);
  void FailObjectRequests(const std::shared_ptr<Object>& obj, int error);
  void Withdraw();
  void HandleCommand(std::string_view cmd);
  void HandleCopen(std::string_view args);
  void HandleCread(std::string_view args);
  void HandleRestore();
  Status ApplySize(Object& obj, std::uint64_t size);

  // Threads (mu not held on entry).
  void ServiceLoop();
  void SenderLoop();
  void Wake();
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_KERNEL_SIMULATOR_STATE_H_
