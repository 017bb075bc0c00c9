#include "store/store_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "store/blob_lease.h"

namespace lazyblob {
namespace {

Result<UniqueFd> OpenLockFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return Status::FromErrno(errno, "open " + path);
  return fd;
}

// 0 on success, EWOULDBLOCK when held elsewhere, another errno on failure.
int Flock(int fd, int op) {
  while (::flock(fd, op) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

}  // namespace

Result<UniqueFd> LockStoreForWriting(const std::string& store_dir) {
  const std::string path = store_dir + "/LOCK";
  LB_ASSIGN_OR_RETURN(UniqueFd fd, OpenLockFile(path));
  int err = Flock(fd.get(), LOCK_EX | LOCK_NB);
  if (err == EWOULDBLOCK) {
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "unknown";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return Busy("store " + store_dir + " is locked by another writer (pid " + pid + ")");
  }
  if (err != 0) return Status::FromErrno(err, "flock " + path);
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return Status::FromErrno(errno, "write " + path);
  }
  return fd;
}

Result<UniqueFd> LockStoreForServing(const std::string& store_dir) {
  const std::string path = store_dir + "/SERVING";
  LB_ASSIGN_OR_RETURN(UniqueFd fd, OpenLockFile(path));
  if (int err = Flock(fd.get(), LOCK_SH); err != 0) return Status::FromErrno(err, "flock " + path);
  return fd;
}

Result<UniqueFd> LockBlobAgainstLeases(const std::string& store_dir, std::string_view blob_id) {
  const std::string dir = store_dir + "/leases";
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + dir);
  }
  const std::string path = BlobLease::LockPath(store_dir, blob_id);
  LB_ASSIGN_OR_RETURN(UniqueFd fd, OpenLockFile(path));
  int err = Flock(fd.get(), LOCK_EX | LOCK_NB);
  if (err == EWOULDBLOCK) {
    return Busy("blob " + std::string(blob_id) +
                " is being served by a running daemon; unmount it first");
  }
  if (err != 0) return Status::FromErrno(err, "flock " + path);
  return fd;
}

}  // namespace lazyblob
