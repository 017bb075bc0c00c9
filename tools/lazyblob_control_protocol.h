// The local control protocol between `lazyblob mount/umount` and lazyblobd's fanotify front
// end, over a SOCK_SEQPACKET Unix socket (default /run/lazyblob/control.sock, mode 0600;
// the daemon also checks SO_PEERCRED: root only).
//
// A message is text: a verb line, then `key=value` lines (values without newlines); one
// message per packet, at most 64 KiB. A reply is `ok` with fields, or `error` with
// `code=<StatusCode number>` and `message=...`. A message may carry one fd (SCM_RIGHTS).
//
// Conversations (each on one connection; closing it ends it):
//   prepare id=ID [device=ID]... dir=DIR   -> ok token=T source=PATH [device=PATH]...
//       the daemon made the blobs' sparse files ready (metadata present, marked); the
//       client mount(2)s, then sends
//   mounted token=T dir=DIR mnt_id=N [+ fd of the client's mount namespace]  -> ok
//   abort token=T                                        -> ok   (the mount(2) failed)
//       a prepare whose connection closes without `mounted` is aborted, unless the daemon's
//       worker died meanwhile: then the client reports on a new connection (the token
//       survives in the supervisor) and the daemon keeps the files marked until it does.
//   umount mnt_id=N        -> ok dir=DIR  (N is a lazyblob mount); the client umount2()s,
//   unmounted mnt_id=N     -> ok          (the daemon releases the files)
//   status                 -> ok file=ID:complete|incomplete... mount=N:DIR...
//
// Thread-safety: free functions; a socket is used by one thread at a time.
#ifndef LAZYBLOB_TOOLS_LAZYBLOB_CONTROL_PROTOCOL_H_
#define LAZYBLOB_TOOLS_LAZYBLOB_CONTROL_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

inline constexpr const char* kDefaultControlSocket = "/run/lazyblob/control.sock";
inline constexpr const char* kControlSocketEnvVar = "LAZYBLOB_CONTROL_SOCKET";

struct ControlMessage {
  std::string verb;
  std::vector<std::pair<std::string, std::string>> fields;

  ControlMessage& Add(std::string key, std::string value);
  // The first value of `key`, or "" when absent.
  std::string Get(std::string_view key) const;
  std::vector<std::string> GetAll(std::string_view key) const;

  // kInvalidArgument when a key or value holds a newline (or a key a '=').
  Result<std::string> Encode() const;
  static Result<ControlMessage> Decode(std::string_view bytes);
};

// `error` with the status's code and message; and back.
ControlMessage ErrorReply(const Status& status);
ControlMessage OkReply();
// OK for `ok`; the carried status for `error`; kMalformed for anything else.
Status ReplyStatus(const ControlMessage& reply);

// Sends `message` with `pass_fd` (borrowed; -1: none).
Status SendControl(int socket_fd, const ControlMessage& message, int pass_fd = -1);
// Receives one message (and at most one fd into `passed_fd`, if given). `timeout_ms` < 0
// waits forever; on timeout kCancelled. The peer's close: kNotFound "connection closed".
Result<ControlMessage> ReceiveControl(int socket_fd, int timeout_ms, UniqueFd* passed_fd = nullptr);
// Sends and waits for the reply.
Result<ControlMessage> CallControl(int socket_fd, const ControlMessage& request, int timeout_ms,
                                   int pass_fd = -1);

// Connects to the daemon's control socket at `path`; a clear kNotFound / kPermissionDenied
// naming it when no daemon listens there or the caller may not connect.
Result<UniqueFd> ConnectControl(const std::string& path);

// The unique id of the mount whose root is `dir` (statx STATX_MNT_ID_UNIQUE, falling back to
// STATX_MNT_ID). kInvalidArgument when `dir` is not the root of a mount.
Result<std::uint64_t> MountIdOf(const std::string& dir);

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOB_CONTROL_PROTOCOL_H_
