#include "store/trace_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <span>

#include "core/unique_fd.h"
#include "store/file_ops.h"
#include "store/hashing.h"

namespace lazyblob {
namespace {

constexpr std::size_t kMaxIdBytes = 255;
constexpr std::size_t kMaxFileBytes = 64u << 20;

Status WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "writing an access record");
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status();
}

}  // namespace

TraceDir::TraceDir(std::string store_dir) : dir_(std::move(store_dir) + "/traces") {}

std::string TraceDir::PathOf(std::string_view blob_id) const {
  const ChunkKey key = ChunkKeyOf(std::as_bytes(std::span(blob_id.data(), blob_id.size())));
  return dir_ + "/" + key.ToHex() + ".trace";
}

Result<AccessTrace> TraceDir::Load(std::string_view blob_id) {
  const std::string path = PathOf(blob_id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT)
      return NotFound("no access record for blob '" + std::string(blob_id) + "'");
    return Status::FromErrno(errno, "opening " + path);
  }
  std::string bytes;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "reading " + path);
    if (n == 0) break;
    bytes.append(buf, static_cast<std::size_t>(n));
    if (bytes.size() > kMaxFileBytes) return Corruption(path + ": too large for an access record");
  }
  if (bytes.empty() || bytes.size() < 1u + static_cast<std::uint8_t>(bytes[0])) {
    return Corruption(path + ": truncated");
  }
  const std::size_t id_len = static_cast<std::uint8_t>(bytes[0]);
  if (std::string_view(bytes).substr(1, id_len) != blob_id) {
    return Corruption(path + ": holds the record of another blob");
  }
  Result<AccessTrace> trace = AccessTrace::Decode(std::string_view(bytes).substr(1 + id_len));
  if (!trace.ok()) return Corruption(path + ": " + trace.status().message());
  return trace;
}

Status TraceDir::Save(std::string_view blob_id, const AccessTrace& trace) {
  if (blob_id.empty() || blob_id.size() > kMaxIdBytes) {
    return InvalidArgument("blob id must be 1 to 255 bytes");
  }
  if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "creating " + dir_);
  }
  static std::atomic<unsigned> counter{0};
  const std::string path = PathOf(blob_id);
  const std::string tmp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  std::string bytes(1, static_cast<char>(blob_id.size()));
  bytes.append(blob_id);
  bytes.append(trace.Encode());
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) return Status::FromErrno(errno, "creating " + tmp);
    Status st = WriteAll(fd.get(), bytes);
    if (st.ok() && ::fdatasync(fd.get()) != 0) st = Status::FromErrno(errno, "syncing " + tmp);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const Status st = Status::FromErrno(errno, "renaming " + tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  return SyncDirectory(PosixFileOps(), dir_);
}

Status TraceDir::Remove(std::string_view blob_id) {
  LB_RETURN_IF_ERROR(Load(blob_id).status());  // refuses another blob's file
  const std::string path = PathOf(blob_id);
  if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "removing " + path);
  return SyncDirectory(PosixFileOps(), dir_);
}

}  // namespace lazyblob
