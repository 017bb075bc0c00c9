// Helpers for tests that run the built `lazyblob` binary: a temp directory per test,
// a process runner capturing stdout/stderr, and file utilities.
#ifndef LAZYBLOB_TESTS_TOOLS_LAZYBLOB_CLI_TEST_UTIL_H_
#define LAZYBLOB_TESTS_TOOLS_LAZYBLOB_CLI_TEST_UTIL_H_

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace lazyblob::testing {

#ifndef LAZYBLOB_BIN
#define LAZYBLOB_BIN "lazyblob"
#endif

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
  nlohmann::json Json() const { return nlohmann::json::parse(out); }
  // Non-empty lines of stderr.
  std::vector<std::string> ErrLines() const {
    std::vector<std::string> lines;
    std::istringstream in(err);
    for (std::string l; std::getline(in, l);) {
      if (!l.empty()) lines.push_back(l);
    }
    return lines;
  }
};

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteFile(const std::filesystem::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline std::string RandomBytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = rng();
    for (std::size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (8 * j));
  }
  return s;
}

// Runs `argv` (argv[0] a path) with stdin from `stdin_path` (/dev/null by default) and
// stdout/stderr captured in files "runN.out"/"runN.err" of `tmp` (removed afterwards).
inline RunResult RunProcess(const std::vector<std::string>& argv, const std::filesystem::path& tmp,
                            const std::string& stdin_path = "/dev/null") {
  static std::atomic<int> counter{0};
  const std::string base = (tmp / ("run" + std::to_string(++counter))).string();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, (base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&fa, 2, (base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  RunResult r;
  const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << rc;
    return r;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(base + ".out");
  r.err = ReadFile(base + ".err");
  std::filesystem::remove(base + ".out");
  std::filesystem::remove(base + ".err");
  return r;
}

// A temp directory with a store path inside; runs lazyblob against that store.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("LAZYBLOB_STORE");
    std::string tmpl = (std::filesystem::temp_directory_path() / "lazyblob-cli-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    store_ = dir_ / "store";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  RunResult Lb(std::vector<std::string> args) const { return LbAt(store_, std::move(args)); }
  RunResult LbAt(const std::filesystem::path& store, std::vector<std::string> args) const {
    // stderr is a file here, so no progress bar is drawn either way.
    std::vector<std::string> argv = {LAZYBLOB_BIN, "--store", store.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, dir_);
  }
  std::filesystem::path File(const std::string& name, const std::string& data) const {
    const std::filesystem::path p = dir_ / name;
    WriteFile(p, data);
    return p;
  }

  std::filesystem::path dir_;
  std::filesystem::path store_;
};

}  // namespace lazyblob::testing

#endif  // LAZYBLOB_TESTS_TOOLS_LAZYBLOB_CLI_TEST_UTIL_H_
