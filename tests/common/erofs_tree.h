// Test helpers for EROFS images: scratch dirs, generated file trees, running mkfs.erofs.
// No project dependency beyond core/, so every module's tests may use them.
#ifndef LAZYBLOB_TESTS_COMMON_EROFS_TREE_H_
#define LAZYBLOB_TESTS_COMMON_EROFS_TREE_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob::erofs_test {

// Disk-backed scratch space: tmpfs takes no fanotify pre-content mark (FANOTIFY_FACTS.md).
inline constexpr char kScratchRoot[] = "/var/tmp";

inline bool HaveMkfsErofs() {
  return ::access("/usr/bin/mkfs.erofs", X_OK) == 0 || ::access("/sbin/mkfs.erofs", X_OK) == 0 ||
         ::access("/usr/sbin/mkfs.erofs", X_OK) == 0;
}

// A scratch directory under /var/tmp, removed (with anything mounted in it detached) on
// destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::string t = std::string(kScratchRoot) + "/lazyblob-" + tag + "-XXXXXX";
    char* p = ::mkdtemp(t.data());
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  std::size_t done = 0;
  while (fd.valid() && done < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
}

// Reads a whole file; `error` gets the errno of the first failing call (0 if none).
inline std::string ReadFile(const std::string& path, int* error = nullptr) {
  std::string out;
  if (error != nullptr) *error = 0;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (error != nullptr) *error = errno;
    return out;
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (error != nullptr) *error = errno;
      break;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Bytes that differ per file and per offset, and compress poorly.
inline std::string PatternBytes(std::size_t size, std::uint64_t seed) {
  std::string s(size, '\0');
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < size; i += 8) {
    std::uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<std::size_t>(8, size - i));
  }
  return s;
}

// A small tree with the shapes EROFS lays out differently: empty, tiny (inline), block
// sized, multi-chunk, unaligned tails, text that compresses, a deep directory, a
// directory with enough entries to need several blocks, and a symlink.
inline void MakeTree(const std::string& root, std::uint64_t seed) {
  namespace fs = std::filesystem;
  fs::create_directories(root + "/a/b/c");
  fs::create_directories(root + "/many");
  const std::size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 65536, 65537, 200000, 1 << 20};
  int i = 0;
  for (std::size_t sz : sizes) {
    WriteFile(root + "/f" + std::to_string(i), PatternBytes(sz, seed + i));
    ++i;
  }
  std::string text;
  while (text.size() < 300000) text += "the quick brown fox " + std::to_string(text.size()) + "\n";
  WriteFile(root + "/a/b/c/text.txt", text);
  for (int k = 0; k < 300; ++k) {
    WriteFile(root + "/many/entry-with-a-longish-name-" + std::to_string(k),
              PatternBytes(static_cast<std::size_t>(k * 37), seed * 1000 + k));
  }
  ::symlink("../f3", (root + "/a/link").c_str());
}

// Runs a program (argv[0] looked up in PATH) with stdout/stderr to /dev/null; returns its
// exit status (or -1).
inline int RunQuiet(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int st = 0;
  if (pid < 0 || ::waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// A sparse file of `size` bytes (all hole).
inline Status MakeSparse(const std::string& path, std::uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno(errno, "create " + path);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return Status::FromErrno(errno, "ftruncate " + path);
  }
  return Status::Ok();
}

inline std::uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace lazyblob::erofs_test

#endif  // LAZYBLOB_TESTS_COMMON_EROFS_TREE_H_
