#include "tools/lazyblob_atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace lazyblob::cli {
namespace {

// The temp path the signal handler removes; written only outside the handler.
char g_tmp_path[4096];
volatile sig_atomic_t g_tmp_live = 0;

void OnSignal(int sig) {
  if (g_tmp_live) unlink(g_tmp_path);
  _exit(128 + sig);
}

void TrackTemp(const std::string& path) {
  if (path.size() >= sizeof g_tmp_path) return;
  g_tmp_live = 0;
  std::memcpy(g_tmp_path, path.c_str(), path.size() + 1);
  g_tmp_live = 1;
}

void UntrackTemp() { g_tmp_live = 0; }

std::string DirName(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

AtomicFile::AtomicFile(std::string path, std::string tmp_path, UniqueFd fd)
    : path_(std::move(path)), tmp_path_(std::move(tmp_path)), fd_(std::move(fd)) {}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      tmp_path_(std::move(other.tmp_path_)),
      fd_(std::move(other.fd_)),
      committed_(other.committed_) {
  other.committed_ = true;  // the moved-from object must not unlink anything
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  fd_.reset();
  unlink(tmp_path_.c_str());
  UntrackTemp();
}

Result<AtomicFile> AtomicFile::Create(const std::string& path, int mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  TrackTemp(tmp);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    const int err = errno;
    UntrackTemp();
    return Status::FromErrno(err, path);
  }
  return AtomicFile(path, std::move(tmp), UniqueFd(fd));
}

Status AtomicFile::Write(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd_.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, path_);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

Status AtomicFile::Commit(bool replace) {
  if (fsync(fd_.get()) != 0) return Status::FromErrno(errno, path_);
  // close() may report a delayed write error (NFS, ENOSPC on some filesystems).
  if (close(fd_.release()) != 0) return Status::FromErrno(errno, path_);
  if (!replace) {
    if (renameat2(AT_FDCWD, tmp_path_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE) != 0) {
      const int err = errno;
      if (err == EEXIST) return AlreadyExists(path_ + ": exists (--no-clobber); nothing written");
      return Status::FromErrno(err, path_);
    }
  } else if (rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    return Status::FromErrno(errno, path_);
  }
  committed_ = true;
  UntrackTemp();
  UniqueFd dir(open(DirName(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) fsync(dir.get());  // best effort: the data itself is already durable
  return Status::Ok();
}

void AtomicFile::InstallCleanupOnSignal() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
}

}  // namespace lazyblob::cli
