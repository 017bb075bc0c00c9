// Drives the real lazyblob and lazyblobd binaries (fanotify front end) on this machine's
// kernel, inside the test process's private mount namespace (the daemon and every
// `lazyblob mount` run in it, so a crashed test leaves no mount on the host). Scratch files
// live under /var/tmp (tmpfs takes no pre-content mark).
//
// Thread-safety: a fixture is used by the test's main thread; the reader helpers fork.
#ifndef LAZYBLOB_TESTS_NATIVE_FANOTIFY_DAEMON_UTIL_H_
#define LAZYBLOB_TESTS_NATIVE_FANOTIFY_DAEMON_UTIL_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/hashing.h"
#include "tests/transport/fanotify_kernel_util.h"

#if !defined(LAZYBLOB_BIN) || !defined(LAZYBLOBD_BIN)
#error "the native daemon tests need LAZYBLOB_BIN and LAZYBLOBD_BIN"
#endif

namespace lazyblob::fanotify_test {

namespace fs = std::filesystem;

struct CommandResult {
  int code = -1;
  std::string out, err;
};

// Runs `argv` with stdout and stderr captured (files in `scratch`).
inline CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& scratch) {
  const std::string out = scratch + "/cmd.out", err = scratch + "/cmd.err";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::close_range(3, ~0U, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  CommandResult r;
  int st = 0;
  if (pid > 0 && ::waitpid(pid, &st, 0) == pid && WIFEXITED(st)) r.code = WEXITSTATUS(st);
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

inline std::string Sha256Hex(const std::string& bytes) {
  const Sha256Digest d = Sha256Of(std::as_bytes(std::span(bytes.data(), bytes.size())));
  return HexOf(d);
}

// Compares every regular file and symlink of `source` with `mounted` by SHA-256; returns the
// relative paths that differ or fail, and counts the files checked.
inline std::vector<std::string> CompareTreesBySha256(const std::string& source,
                                                     const std::string& mounted,
                                                     std::size_t* files) {
  std::vector<std::string> bad;
  *files = 0;
  for (const auto& e : fs::recursive_directory_iterator(source)) {
    const std::string rel = e.path().lexically_relative(source).string();
    const std::string m = mounted + "/" + rel;
    ++*files;
    if (e.is_symlink()) {
      std::error_code ec;
      if (fs::read_symlink(m, ec) != fs::read_symlink(e.path())) bad.push_back(rel + " (symlink)");
    } else if (e.is_regular_file()) {
      int err = 0;
      const std::string got = ReadFile(m, &err);
      if (err != 0) {
        bad.push_back(rel + " (" + std::strerror(err) + ")");
      } else if (Sha256Hex(got) != Sha256Hex(ReadFile(e.path().string()))) {
        bad.push_back(rel + " (sha256 differs)");
      }
    } else {
      --*files;
    }
  }
  return bad;
}

class FanotifyDaemon {
 public:
  explicit FanotifyDaemon(const std::string& root)
      : root_(root), store_(root + "/store"), cache_(root + "/cache"), socket_(root + "/ctl.sock") {
    fs::create_directories(cache_);
  }
  ~FanotifyDaemon() { Kill(); }

  const std::string& store() const { return store_; }
  const std::string& cache() const { return cache_; }
  std::string log() const { return ReadFile(root_ + "/daemon.log"); }
  pid_t pid() const { return pid_; }

  CommandResult Lazyblob(std::vector<std::string> args) const {
    args.insert(args.begin(), LAZYBLOB_BIN);
    return RunCommand(args, root_);
  }
  // `lazyblob import` into the store (extra args: e.g. the chunker).
  void Import(const std::string& file, const std::string& id,
              std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {"--store", store_, "import",       file,
                                     "--id",    id,     "--no-progress"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = Lazyblob(args);
    ASSERT_EQ(r.code, 0) << "import " << file << ": " << r.err;
  }
  CommandResult Mount(const std::string& id, const std::string& dir,
                      const std::vector<std::string>& devices = {}) const {
    fs::create_directories(dir);
    std::vector<std::string> args = {"mount", id, dir, "--control-socket", socket_};
    for (const std::string& d : devices) args.insert(args.end(), {"--device", d});
    return Lazyblob(args);
  }
  CommandResult Umount(const std::string& dir) const {
    return Lazyblob({"umount", dir, "--control-socket", socket_});
  }

  // Starts lazyblobd (supervisor + worker) and waits until it serves the control socket.
  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        LAZYBLOBD_BIN, "--store",          store_,        "--cache-dir",
        cache_,        "--frontend",       "fanotify",    "--control-socket",
        socket_,       "--metrics-listen", "127.0.0.1:0", "--log-level",
        "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string log = root_ + "/daemon.log";
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close_range(3, ~0U, 0);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 3000 && !Serving(); ++i) ::usleep(10'000);
    ASSERT_TRUE(Serving()) << "lazyblobd did not start:\n" << this->log();
  }
  // Sends `sig` to the supervisor and waits for it (at most `timeout`); its wait status, or
  // -1 when it did not exit (then it is killed).
  int Stop(int sig = SIGTERM, std::chrono::seconds timeout = std::chrono::seconds(120)) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int st = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return st;
      }
      ::usleep(20'000);
    }
    Kill();
    return -1;
  }
  // SIGKILL of the supervisor and its worker (test teardown).
  void Kill() {
    if (pid_ <= 0) return;
    const pid_t worker = WorkerPid();
    ::kill(pid_, SIGKILL);
    if (worker > 0) ::kill(worker, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t WorkerPid() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) +
                     "/children");
    pid_t child = -1;
    in >> child;
    return child;
  }
  // Waits until a worker other than `old` serves; its pid.
  pid_t WaitNewWorker(pid_t old) {
    for (int i = 0; i < 3000; ++i, ::usleep(10'000)) {
      const pid_t w = WorkerPid();
      if (w > 0 && w != old && Serving()) return w;
    }
    return -1;
  }

  // The daemon's /metrics, as {series: value}.
  std::map<std::string, double> Metrics() const {
    std::map<std::string, double> out;
    std::smatch m;
    const std::string text = log();
    int port = 0;
    if (std::regex_search(text, m, std::regex(R"(\(port (\d+)\))"))) port = std::stoi(m[1]);
    if (port == 0) return out;
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return out;
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    (void)!::write(fd.get(), req.data(), req.size());
    std::string body;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0)
      body.append(buf, static_cast<std::size_t>(n));
    std::istringstream lines(body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty() || line[0] == '#' || line.rfind("lazyblob_", 0) != 0) continue;
      const std::size_t sp = line.rfind(' ');
      if (sp == std::string::npos) continue;
      try {
        out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
      } catch (...) {
      }
    }
    return out;
  }
  // Sum of the series of `name` whose text holds every one of `labels`.
  double Metric(const std::string& name, const std::vector<std::string>& labels = {}) const {
    double sum = 0;
    for (const auto& [series, value] : Metrics()) {
      if (series.rfind(name, 0) != 0 ||
          (series.size() > name.size() && series[name.size()] != '{')) {
        continue;
      }
      bool all = true;
      for (const auto& l : labels) all &= series.find(l) != std::string::npos;
      if (all) sum += value;
    }
    return sum;
  }

 private:
  bool Serving() const {
    if (pid_ <= 0 || ::waitpid(pid_, nullptr, WNOHANG) != 0) return false;
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", socket_.c_str());
    return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
           log().find("fanotify front end: sparse cache files") != std::string::npos;
  }

  std::string root_, store_, cache_, socket_;
  pid_t pid_ = -1;
};

// mkfs.erofs of `tree` into `image` with `args` (plus -T0 --all-root); true on success.
inline bool MakeErofs(const std::string& image, const std::string& tree,
                      const std::vector<std::string>& args = {}) {
  std::vector<std::string> argv = {"mkfs.erofs", "--quiet", "-T0", "--all-root"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {image, tree});
  return RunQuiet(argv) == 0;
}

}  // namespace lazyblob::fanotify_test

#endif  // LAZYBLOB_TESTS_NATIVE_FANOTIFY_DAEMON_UTIL_H_
