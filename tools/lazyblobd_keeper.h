// The fd keeper: state a worker needs to survive its own death, held by the supervisor.
// A worker hands the supervisor entries (key, value bytes, at most one fd) over a
// SOCK_SEQPACKET socketpair and drops them by key; every worker the supervisor starts first
// receives all entries held at that moment. The fanotify front end keeps its control socket,
// the fill fd of each sparse cache file (opened before the mark: it never raises events)
// and a record per mount there (tools/lazyblobd_fanotify.h); issue 14's leases can use it
// the same way.
//
// Ordering: a Put or Drop is applied in the order the worker sent it. A message the worker
// sent before it died is still applied: the supervisor drains the socket to its end before
// it starts the next worker. So "Put, then act on it" is safe: e.g. put a fill fd, then
// mark the file.
//
// Wire format (one message per record; native endianness, one host): header {u32 magic
// "LBKP" (0x504b424c), u8 op (1 put, 2 drop, 3 end of the initial entries), u8 reserved 0,
// u16 key_len, u32 value_len}, then key bytes, then value bytes; a put may carry one fd in
// SCM_RIGHTS. Keys are 1..1024 bytes, values at most 8 KiB.
//
// Thread-safety: FdKeeper is single-threaded (the supervisor's loop). KeeperClient's Put and
// Drop may be called from any thread (each is one sendmsg on a SEQPACKET socket).
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_KEEPER_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_KEEPER_H_

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

struct KeptEntry {
  std::string value;
  UniqueFd fd;  // may be invalid: an entry without an fd
};

// The supervisor's side.
class FdKeeper {
 public:
  // Sends every entry (duplicates of the fds), then the end marker, to a new worker.
  Status SendAll(int socket_fd) const;
  // Applies every message queued on `socket_fd` without blocking. Returns false once the
  // peer closed and everything was read.
  Result<bool> Drain(int socket_fd);
  // Drain() until the peer's end: for a worker that exited.
  Status DrainToEnd(int socket_fd);

  std::size_t size() const { return entries_.size(); }
  const std::map<std::string, KeptEntry, std::less<>>& entries() const { return entries_; }

 private:
  // Applies one received message; false for the peer's end of stream.
  Result<bool> ReceiveOne(int socket_fd, int flags);

  std::map<std::string, KeptEntry, std::less<>> entries_;
};

// The worker's side.
class KeeperClient {
 public:
  // A client that keeps nothing (no supervisor): Put and Drop succeed and do nothing.
  KeeperClient() = default;
  // Receives the initial entries from `socket_fd` (blocking until the end marker).
  static Result<KeeperClient> Connect(UniqueFd socket_fd);

  bool connected() const { return socket_.valid(); }
  // The entries handed over at Connect; the caller takes what it uses.
  std::map<std::string, KeptEntry, std::less<>>& initial() { return initial_; }

  // `fd` is borrowed (-1: none); the supervisor keeps a duplicate.
  Status Put(std::string_view key, std::string_view value, int fd) const;
  Status Drop(std::string_view key) const;

 private:
  UniqueFd socket_;
  std::map<std::string, KeptEntry, std::less<>> initial_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_KEEPER_H_
