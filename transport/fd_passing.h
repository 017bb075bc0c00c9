// Handing the device fd to another process, so the cache outlives a worker (PROTOCOL.md
// "When the daemon dies"): over a Unix socket with SCM_RIGHTS, or through systemd's fd
// store (FDSTORE=1 / sd_listen_fds_with_names).
//
// Wire format of SendFds (one message, SOCK_STREAM or SOCK_SEQPACKET): a 12-byte header
// {u32 magic 'LBFD' (0x4446424c little-endian), u16 version = 1, u16 fd_count, u32 name_len}
// followed by name_len bytes of name, with the fds in one SCM_RIGHTS control message.
//
// Thread-safety: stateless functions; the socket must not be used by others meanwhile.
#ifndef LAZYBLOB_TRANSPORT_FD_PASSING_H_
#define LAZYBLOB_TRANSPORT_FD_PASSING_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

inline constexpr std::uint32_t kFdPassingMagic = 0x4446424c;  // "LBFD"
inline constexpr std::uint16_t kFdPassingVersion = 1;
inline constexpr std::size_t kMaxPassedFds = 16;
inline constexpr std::string_view kCachefilesFdName = "cachefiles";

struct ReceivedFds {
  std::string name;
  std::vector<UniqueFd> fds;
};

// Sends `fds` (borrowed; the receiver gets duplicates) with `name` (at most 255 bytes).
Status SendFds(int socket_fd, std::span<const int> fds, std::string_view name);
// One recvmsg on `socket_fd` (EINTR retried) into `buf`; takes ownership of every fd that
// came along with SCM_RIGHTS (up to kMaxPassedFds), whatever the caller does next.
// bytes == 0: the peer closed. EAGAIN comes back as a Status (errno_value() == EAGAIN).
struct ReceivedMessage {
  std::size_t bytes = 0;
  bool truncated = false;  // MSG_TRUNC or MSG_CTRUNC: data or fds did not fit
  std::vector<UniqueFd> fds;
};
Result<ReceivedMessage> ReceiveWithFds(int socket_fd, std::span<std::byte> buf, int flags);

// Receives one SendFds message. kMalformed on a bad header (any fds received are closed).
Result<ReceivedFds> ReceiveFds(int socket_fd);

// Stores `fd` (borrowed) in systemd's fd store under `name` (sd_pid_notify_with_fds,
// FDSTORE=1, FDNAME=name). kUnsupported when not run by systemd (no NOTIFY_SOCKET); the
// unit needs FileDescriptorStoreMax= >= 1.
Status StoreFdInSystemd(int fd, std::string_view name = kCachefilesFdName);
// Takes the fd named `name` passed by systemd at start (sd_listen_fds_with_names), or
// nullopt if none. Other passed fds are left open for their owners.
Result<std::optional<UniqueFd>> TakeFdFromSystemd(std::string_view name = kCachefilesFdName);

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_FD_PASSING_H_
