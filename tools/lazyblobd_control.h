// ControlServer: lazyblobd's end of the control socket (tools/lazyblob_control_protocol.h)
// for the fanotify front end. One thread accepts connections and answers their messages in
// turn (mount preparation is serialized anyway); only root peers (SO_PEERCRED uid 0) are
// served. Every message is handled on its own, by token or mount id, so a client may report
// on a new connection after a worker restart.
//
// The listening socket outlives workers: ListenControl makes it once and the worker hands
// it to the supervisor's keeper, so clients that connect while a worker restarts wait in
// the backlog.
//
// Thread-safety: Start/Stop from one controlling thread. Lifetimes: `mounts` is borrowed.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_CONTROL_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_CONTROL_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "core/status.h"
#include "core/unique_fd.h"
#include "tools/lazyblobd_fanotify_mounts.h"

namespace lazyblob {

// Binds and listens on a SOCK_SEQPACKET socket at `path` (mode 0600; missing parent
// directories are made, mode 0755). A stale socket file is replaced; kBusy when another
// daemon answers on it.
Result<UniqueFd> ListenControl(const std::string& path);

class ControlServer {
 public:
  static Result<std::unique_ptr<ControlServer>> Start(int listen_fd, FanotifyMounts* mounts);
  ~ControlServer();  // Stop()s
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Stops accepting; the connection being served gets its current message answered.
  void Stop();

 private:
  ControlServer(int listen_fd, FanotifyMounts* mounts) : listen_fd_(listen_fd), mounts_(mounts) {}
  void Loop();
  void Serve(int conn);
  ControlMessage Handle(const ControlMessage& request, UniqueFd passed_fd);

  const int listen_fd_;
  FanotifyMounts* const mounts_;
  UniqueFd wake_fd_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_CONTROL_H_
