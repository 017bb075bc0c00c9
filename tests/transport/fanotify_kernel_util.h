// Helpers for tests that run fanotify pre-content groups and EROFS file-backed mounts on
// the machine's own kernel (>= 6.14), as root, inside a private mount namespace.
//
// Every mount a test makes lives in the test process's own mount namespace
// (EnterPrivateMountNamespace), so a crashed test leaves nothing mounted on the host: the
// namespace dies with the process. Scratch files live under /var/tmp (disk-backed: tmpfs
// does not take pre-content marks, FANOTIFY_FACTS.md).
#ifndef LAZYBLOB_TESTS_TRANSPORT_FANOTIFY_KERNEL_UTIL_H_
#define LAZYBLOB_TESTS_TRANSPORT_FANOTIFY_KERNEL_UTIL_H_

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"
#include "tests/common/erofs_tree.h"
#include "transport/fanotify_group.h"

namespace lazyblob::fanotify_test {

using erofs_test::FileSize;
using erofs_test::kScratchRoot;
using erofs_test::MakeSparse;
using erofs_test::MakeTree;
using erofs_test::PatternBytes;
using erofs_test::ReadFile;
using erofs_test::RunQuiet;
using erofs_test::TempDir;
using erofs_test::WriteFile;

// Empty when the kernel tests can run; else one line saying what is missing.
inline std::string KernelSkipReason() {
  if (::geteuid() != 0) return "needs root (fanotify pre-content groups and mount(2))";
  Status s = FanotifyGroup::ProbeSupport(kScratchRoot);
  if (!s.ok()) return s.ToString();
  if (!erofs_test::HaveMkfsErofs()) return "mkfs.erofs not found (apt-get install erofs-utils)";
  return "";
}

// Moves the calling (single-threaded) process into a new mount namespace whose mounts do
// not propagate back to the host. Idempotent enough for one test process: each call makes
// a fresh namespace.
inline Status EnterPrivateMountNamespace() {
  if (::unshare(CLONE_NEWNS) != 0) return Status::FromErrno(errno, "unshare(CLONE_NEWNS)");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return Status::FromErrno(errno, "mount --make-rprivate /");
  }
  return Status::Ok();
}

// An EROFS file-backed mount: mount(2) with a regular file as source (util-linux mount
// would set up a loop device instead). Unmounted (detached) on destruction.
class ErofsMount {
 public:
  static Result<std::unique_ptr<ErofsMount>> Make(const std::string& image, const std::string& dir,
                                                  const std::string& options) {
    std::filesystem::create_directories(dir);
    if (::mount(image.c_str(), dir.c_str(), "erofs", MS_RDONLY,
                options.empty() ? nullptr : options.c_str()) != 0) {
      return Status::FromErrno(errno, "mount -t erofs " + image + " " + dir + " -o " + options);
    }
    return std::unique_ptr<ErofsMount>(new ErofsMount(dir));
  }
  ~ErofsMount() { ::umount2(dir_.c_str(), MNT_DETACH); }
  const std::string& dir() const { return dir_; }

 private:
  explicit ErofsMount(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// Answers the events of a group on a thread: for an event on a file it knows (by inode),
// copies [offset, offset + count) from that file's "truth" copy through the event fd and
// allows; a `policy` may deny instead. Records every range it served.
class EventServer {
 public:
  enum class Decision { kFillAndAllow, kAllowUnfilled, kDenyEio, kLeavePending };
  using Policy = std::function<Decision(const FanotifyEvent&)>;
  struct Served {
    std::uint64_t ino;
    FanotifyRange range;
  };

  explicit EventServer(FanotifyGroup* group, Policy policy = nullptr)
      : group_(group), policy_(std::move(policy)) {}
  ~EventServer() { Stop(); }

  // Serves events on the file `served` with the bytes of `truth` (both paths).
  void AddFile(const std::string& served, const std::string& truth) {
    struct stat st {};
    ::stat(served.c_str(), &st);
    truth_[st.st_ino] = UniqueFd(::open(truth.c_str(), O_RDONLY | O_CLOEXEC));
  }
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Served> served() {
    std::lock_guard<std::mutex> l(mu_);
    return served_;
  }
  std::uint64_t errors() const { return errors_; }
  // From now on allow every event without copying: the fast path for ranges known to be
  // filled already.
  void AllowWithoutFilling() { allow_only_ = true; }
  // Events read but deliberately left unanswered (kLeavePending), still owned here.
  std::vector<PendingFanotifyEvent> TakeLeftPending() {
    std::lock_guard<std::mutex> l(mu_);
    return std::move(left_);
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{group_->fd(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      auto batch = group_->Read();
      if (!batch.ok()) {
        ++errors_;
        continue;
      }
      errors_ += batch->rejected;
      for (PendingFanotifyEvent& e : batch->events) Handle(std::move(e));
    }
  }
  void Handle(PendingFanotifyEvent e) {
    if (!e.event().pre_access()) return;
    Decision d = allow_only_ ? Decision::kAllowUnfilled
                 : policy_   ? policy_(e.event())
                             : Decision::kFillAndAllow;
    struct stat st {};
    ::fstat(e.fd(), &st);
    const FanotifyRange r = *e.event().range;
    {
      std::lock_guard<std::mutex> l(mu_);
      served_.push_back({st.st_ino, r});
    }
    switch (d) {
      case Decision::kDenyEio:
        if (!e.Deny(EIO).ok()) ++errors_;
        return;
      case Decision::kAllowUnfilled:
        if (!e.Allow().ok()) ++errors_;
        return;
      case Decision::kLeavePending: {
        std::lock_guard<std::mutex> l(mu_);
        left_.push_back(std::move(e));
        return;
      }
      case Decision::kFillAndAllow:
        break;
    }
    auto it = truth_.find(st.st_ino);
    if (it == truth_.end() || !Fill(it->second.get(), e.fd(), r, st.st_size)) {
      ++errors_;
      e.Deny(EIO).IgnoreError();
      return;
    }
    if (!e.Allow().ok()) ++errors_;
  }
  static bool Fill(int from, int to, FanotifyRange r, off_t size) {
    std::vector<char> buf(1 << 20);
    std::uint64_t end = std::min<std::uint64_t>(r.end(), static_cast<std::uint64_t>(size));
    for (std::uint64_t at = r.offset; at < end;) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - at));
      ssize_t n = ::pread(from, buf.data(), want, static_cast<off_t>(at));
      if (n <= 0) return false;
      if (::pwrite(to, buf.data(), static_cast<std::size_t>(n), static_cast<off_t>(at)) != n) {
        return false;
      }
      at += static_cast<std::uint64_t>(n);
    }
    return true;
  }

  FanotifyGroup* group_;
  Policy policy_;
  std::map<ino_t, UniqueFd> truth_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> allow_only_{false};
  std::atomic<std::uint64_t> errors_{0};
  std::mutex mu_;
  std::vector<Served> served_;
  std::vector<PendingFanotifyEvent> left_;
};

// Compares every regular file and symlink under `mounted` with `source`; returns the
// relative paths that differ or fail to read (empty when all match), and counts files.
inline std::vector<std::string> CompareTrees(const std::string& source, const std::string& mounted,
                                             std::size_t* files) {
  namespace fs = std::filesystem;
  std::vector<std::string> bad;
  *files = 0;
  for (const auto& e : fs::recursive_directory_iterator(source)) {
    std::string rel = e.path().lexically_relative(source).string();
    std::string m = mounted + "/" + rel;
    if (e.is_symlink()) {
      std::error_code ec;
      if (fs::read_symlink(m, ec) != fs::read_symlink(e.path())) bad.push_back(rel + " (symlink)");
      ++*files;
    } else if (e.is_regular_file()) {
      int err = 0;
      std::string got = ReadFile(m, &err);
      if (err != 0) {
        bad.push_back(rel + " (" + std::strerror(err) + ")");
      } else if (got != ReadFile(e.path().string())) {
        bad.push_back(rel);
      }
      ++*files;
    }
  }
  return bad;
}

// Runs `body` in a forked child and returns its exit code, or -1 if it did not exit within
// `timeout` (it is then killed). For readers that may block in the kernel. The child
// closes every inherited fd above stderr first: a forked child holding a copy of the
// group fd would keep the group alive (and its own blocked read with it). `keep_fd`, if
// given, survives as fd 3.
inline int RunChild(const std::function<int()>& body, std::chrono::milliseconds timeout,
                    std::atomic<pid_t>* pid_out = nullptr, int keep_fd = -1) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (keep_fd >= 0 && keep_fd != 3 && ::dup2(keep_fd, 3) != 3) ::_exit(125);
    ::close_range(keep_fd >= 0 ? 4 : 3, ~0U, 0);
    ::_exit(body());
  }
  if (pid_out != nullptr) *pid_out = pid;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &st, 0);
  return -1;
}

}  // namespace lazyblob::fanotify_test

#endif  // LAZYBLOB_TESTS_TRANSPORT_FANOTIFY_KERNEL_UTIL_H_
