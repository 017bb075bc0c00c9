#include "tools/lazyblobd_preflight.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <string>

#include "core/unique_fd.h"

#include "metrics/metrics_server.h"
#include "store/chunk_store.h"

namespace lazyblob {
namespace {

constexpr unsigned kMiscMajor = 10;  // every misc device, /dev/cachefiles among them

// Runs `check` in a forked child and returns its Status. Opening the store starts RocksDB's
// background threads, and the supervisor must stay single-threaded: it forks workers (a
// fork copies only the forking thread, and any lock another thread held stays locked), and
// a thread without the supervisor's signal mask would take its SIGCHLD.
Status InChildProcess(const std::function<Status()>& check) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "preflight: pipe");
  UniqueFd r(fds[0]), w(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "preflight: fork");
  if (pid == 0) {
    r.reset();
    const Status s = check();
    const std::string text = std::to_string(static_cast<int>(s.code())) + " " + s.message();
    (void)!::write(w.get(), text.data(), text.size());
    ::_exit(0);
  }
  w.reset();
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(r.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::size_t space = text.find(' ');
  if (!WIFEXITED(status) || space == std::string::npos) {
    return Internal("preflight: the store check crashed (status " + std::to_string(status) + ")");
  }
  const auto code = static_cast<StatusCode>(std::stoi(text.substr(0, space)));
  if (code == StatusCode::kOk) return Status::Ok();
  return Status(code, text.substr(space + 1));
}

std::string DevText(dev_t d) { return std::to_string(major(d)) + ":" + std::to_string(minor(d)); }

}  // namespace

Status CheckCachefilesDevice(const std::string& path, const std::string& sysfs_dev) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::FromErrno(errno, "--device " + path).WithContext("device");
  }
  if (!S_ISCHR(st.st_mode)) {
    return InvalidArgument("--device " + path +
                           " is not a character device; it must be the cachefiles device "
                           "(/dev/cachefiles)");
  }
  std::ifstream in(sysfs_dev);
  unsigned want_major = 0, want_minor = 0;
  char colon = 0;
  if (in >> want_major >> colon >> want_minor && colon == ':') {
    if (major(st.st_rdev) != want_major || minor(st.st_rdev) != want_minor) {
      return InvalidArgument("--device " + path + " is character device " + DevText(st.st_rdev) +
                             ", not the cachefiles device (" + std::to_string(want_major) + ":" +
                             std::to_string(want_minor) + ", from " + sysfs_dev + ")");
    }
    return Status::Ok();
  }
  if (major(st.st_rdev) != kMiscMajor) {
    return InvalidArgument("--device " + path + " is character device " + DevText(st.st_rdev) +
                           ", not a misc device like /dev/cachefiles (10:N); " + sysfs_dev +
                           " is missing: is the cachefiles module loaded?");
  }
  return Status::Ok();
}

Status Preflight(const DaemonConfig& c) {
  LB_RETURN_IF_ERROR(c.Validate());
  if (!c.store_dir.empty()) {  // empty: an --origin node that serves from its origin cache only
    struct stat st {};
    if (::stat(c.store_dir.c_str(), &st) != 0) {
      const int err = errno;
      if (err == ENOENT) {
        return InvalidArgument("--store " + c.store_dir +
                               ": no such directory (create a store with 'lazyblob --store " +
                               c.store_dir + " import IMAGE')");
      }
      return Status::FromErrno(err, "--store " + c.store_dir);
    }
    LB_RETURN_IF_ERROR(InChildProcess([&c] {
      ChunkStoreOptions so;
      so.path = c.store_dir;
      auto store = ChunkStore::Open(so);
      return store.ok() ? Status::Ok() : store.status().WithContext("--store " + c.store_dir);
    }));
  }
  if (c.sim_socket.empty()) {
    struct stat st {};
    if (::stat(c.cache_dir.c_str(), &st) != 0) {
      return Status::FromErrno(errno, "--cache-dir " + c.cache_dir);
    }
    if (!S_ISDIR(st.st_mode)) {
      return InvalidArgument("--cache-dir " + c.cache_dir + " is not a directory");
    }
  }
  if (!c.metrics_listen.empty()) {
    LB_RETURN_IF_ERROR(CheckMetricsListenAddress(c.metrics_listen).WithContext("--metrics-listen"));
  }
  // The device is checked where it will be used: always with --frontend cachefiles, and
  // with auto when it exists (a missing one makes auto pick fanotify).
  struct stat dev {};
  const bool device_exists = ::stat(c.device_path.c_str(), &dev) == 0;
  if (c.sim_socket.empty() &&
      (c.frontend == "cachefiles" || (c.frontend == "auto" && device_exists))) {
    LB_RETURN_IF_ERROR(CheckCachefilesDevice(c.device_path));
  }
  return Status::Ok();
}

}  // namespace lazyblob
