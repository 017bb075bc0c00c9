// lazyblobd's flags and config file: one size grammar shared with lazyblob, engine defaults
// from EngineOptions, a strict TOML file (unknown keys, wrong types, negative sizes and
// syntax errors are FILE:LINE:COLUMN and exit 2), flags winning over the file.
#include "tools/lazyblobd_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "tools/byte_size.h"

namespace lazyblob {
namespace {

ParsedArgs Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "lazyblobd");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseDaemonArgs(static_cast<int>(argv.size()), argv.data());
}

// A config file in /var/tmp holding `text`; removed with the object.
class ConfigFile {
 public:
  explicit ConfigFile(const std::string& text) {
    char tmpl[] = "/var/tmp/lazyblobd-config-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
    std::ofstream(path_) << text;
  }
  ~ConfigFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Parses with `text` as the config file; returns the exit code and what went to stderr.
std::pair<int, std::string> ParseWithConfig(const std::string& text,
                                            std::vector<std::string> extra = {}) {
  ConfigFile f(text);
  std::vector<std::string> args = {"--config", f.path(), "--cache-dir", "/c"};
  args.insert(args.end(), extra.begin(), extra.end());
  ::testing::internal::CaptureStderr();
  const int code = Parse(args).exit_code;
  std::string err = ::testing::internal::GetCapturedStderr();
  // Error lines name the file; tests compare against "F".
  for (std::size_t at; (at = err.find(f.path())) != std::string::npos;)
    err.replace(at, f.path().size(), "F");
  return {code, err};
}

TEST(LazyblobdConfig, SizesUseTheGrammarLazyblobUses) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("512K"), 512u << 10);
  EXPECT_EQ(*ParseByteSize("1M"), 1u << 20);
  EXPECT_EQ(*ParseByteSize("256MiB"), 256u << 20);
  EXPECT_EQ(*ParseByteSize("2g"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize("64kb"), 64u << 10);
  EXPECT_EQ(*ParseByteSize("1T"), 1ull << 40);  // lazyblobd's old parser refused T
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("12X").ok());
  EXPECT_FALSE(ParseByteSize("M").ok());
  EXPECT_FALSE(ParseByteSize("99999999999999999999").ok());
  ParsedArgs a = Parse({"--cache-dir", "/c", "--write-ahead", "1MiB", "--chunk-cache", "1T"});
  ASSERT_EQ(a.exit_code, -1);
  EXPECT_EQ(a.config.write_ahead_bytes, 1u << 20);
  EXPECT_EQ(a.config.chunk_cache_bytes, 1ull << 40);
}

TEST(LazyblobdConfig, EngineDefaultsComeFromEngineOptions) {
  const DaemonConfig c;
  const EngineOptions e;
  EXPECT_EQ(c.worker_threads, e.worker_threads);
  EXPECT_EQ(c.write_ahead_bytes, e.write_ahead_bytes);
  EXPECT_EQ(c.chunk_cache_bytes, e.chunk_cache_bytes);
  EXPECT_EQ(c.prefetch_on_open, e.prefetch_on_open);
  ParsedArgs a = Parse({"--cache-dir", "/c"});  // no flags: the same
  ASSERT_EQ(a.exit_code, -1);
  EXPECT_EQ(a.config.write_ahead_bytes, e.write_ahead_bytes);
  EXPECT_EQ(a.config.chunk_cache_bytes, e.chunk_cache_bytes);
}

TEST(LazyblobdConfig, FlagsWinOverTheConfigFile) {
  ConfigFile f(
      "store = \"/from/toml\"\nsim_socket = \"/s\"\nwrite_ahead = \"2M\"\n"
      "chunk_cache = \"64M\"\nthreads = 3\nprefetch = true\n"
      "log_level = \"warn\"\n");
  ParsedArgs a = Parse({"--config", f.path(), "--store", "/from/flag", "--write-ahead", "512K"});
  ASSERT_EQ(a.exit_code, -1);
  EXPECT_EQ(a.config.store_dir, "/from/flag");
  EXPECT_EQ(a.config.sim_socket, "/s");
  EXPECT_EQ(a.config.write_ahead_bytes, 512u << 10);
  EXPECT_EQ(a.config.chunk_cache_bytes, 64u << 20);
  EXPECT_EQ(a.config.worker_threads, 3);
  EXPECT_TRUE(a.config.prefetch_on_open);
  EXPECT_EQ(a.config.log_level, "warn");
  EXPECT_TRUE(a.config.supervisor);
}

TEST(LazyblobdConfig, MissingCacheDirOrBadValuesAreUsageErrors) {
  EXPECT_EQ(Parse({"--store", "/s"}).exit_code, 2);
  EXPECT_EQ(Parse({"--store", "/s", "--cache-dir", "/c", "--write-ahead", "1Q"}).exit_code, 2);
  EXPECT_EQ(Parse({"--cache-dir", "/c", "--log-format", "xml"}).exit_code, 2);
  EXPECT_EQ(Parse({"--cache-dir", "/c", "--stop-timeout", "0"}).exit_code, 2);
  ParsedArgs ok = Parse({"--store", "/s", "--cache-dir", "/c", "--no-supervisor"});
  EXPECT_EQ(ok.exit_code, -1);
  EXPECT_FALSE(ok.config.supervisor);
  // The store defaults to lazyblob's default store.
  EXPECT_EQ(Parse({"--cache-dir", "/c"}).config.store_dir, "/var/lib/lazyblob");
}

TEST(LazyblobdConfig, UnknownKeysAreErrorsWithLineColumnAndASuggestion) {
  auto [code, err] = ParseWithConfig("store = \"/s\"\nwrite_ahed = \"1M\"\n  cache-dir = \"/x\"\n");
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("lazyblobd: F:2:1: unknown key 'write_ahed' (did you mean 'write_ahead'?)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("lazyblobd: F:3:3: unknown key 'cache-dir' (did you mean 'cache_dir'?)"),
            std::string::npos)
      << err;
}

TEST(LazyblobdConfig, WrongTypesAndNegativeSizesAreErrorsNotDefaults) {
  auto [code, err] = ParseWithConfig(
      "threads = \"8\"\nprefetch = \"yes\"\nlog_level = 3\nwrite_ahead = -5\n"
      "chunk_cache = \"12Q\"\n");
  EXPECT_EQ(code, 2);
  for (const char* want :
       {"F:1:11: 'threads' must be an integer, not a string",
        "F:2:12: 'prefetch' must be true or false, not a string",
        "F:3:13: 'log_level' must be a string, not an integer",
        "F:4:15: 'write_ahead' must not be negative", "F:5:15: 'chunk_cache': bad size '12Q'"}) {
    EXPECT_NE(err.find(want), std::string::npos) << want << "\n" << err;
  }
}

TEST(LazyblobdConfig, SyntaxErrorsNameLineAndColumn) {
  auto [code, err] = ParseWithConfig("store = \"/s\"\nthreads = = 4\n");
  EXPECT_EQ(code, 2);
  EXPECT_EQ(err.rfind("lazyblobd: F:2:", 0), 0u) << err;
}

TEST(LazyblobdConfig, TheExampleConfigIsValidAndUsesTheDefaultStore) {
  std::ifstream in(std::string(LAZYBLOB_SOURCE_DIR) + "/tools/lazyblobd.toml.example");
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.find("sim_socket"), std::string::npos);  // test-only, not for users
  auto [code, err] = ParseWithConfig(text);
  EXPECT_EQ(code, -1) << err;
  ConfigFile f(text);
  ParsedArgs a = Parse({"--config", f.path()});
  ASSERT_EQ(a.exit_code, -1);
  EXPECT_EQ(a.config.store_dir, DaemonConfig{}.store_dir);
  EXPECT_EQ(a.config.write_ahead_bytes, EngineOptions{}.write_ahead_bytes);
  EXPECT_EQ(a.config.chunk_cache_bytes, EngineOptions{}.chunk_cache_bytes);
}

TEST(LazyblobdConfig, ReloadRereadsStrictlyAndKeepsFlags) {
  ConfigFile f("cache_dir = \"/c\"\nlog_level = \"warn\"\nwrite_ahead = \"2M\"\n");
  ParsedArgs a = Parse({"--config", f.path(), "--log-level", "debug"});
  ASSERT_EQ(a.exit_code, -1);
  std::ofstream(f.path()) << "cache_dir = \"/c\"\nlog_level = \"error\"\nwrite_ahead = \"4M\"\n";
  ReloadableFlags given;
  given.log_level = true;
  ASSERT_TRUE(ReloadConfig(&a.config, given).ok());
  EXPECT_EQ(a.config.log_level, "debug");
  EXPECT_EQ(a.config.write_ahead_bytes, 4u << 20);
  std::ofstream(f.path()) << "cache_dir = \"/c\"\nwrite_ahead = \"8M\"\nbogus = 1\n";
  Status s = ReloadConfig(&a.config, given);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("unknown key 'bogus'"), std::string::npos) << s.message();
  EXPECT_EQ(a.config.write_ahead_bytes, 4u << 20);  // nothing applied
}

TEST(LazyblobdConfig, FrontendIsAutoCachefilesOrFanotify) {
  ParsedArgs a = Parse({"--store", "/s", "--cache-dir", "/c"});
  ASSERT_EQ(a.exit_code, -1);
  EXPECT_EQ(a.config.frontend, "auto");
  EXPECT_EQ(a.config.control_socket, "/run/lazyblob/control.sock");
  a = Parse({"--store", "/s", "--cache-dir", "/c", "--frontend", "fanotify", "--control-socket",
             "/x.sock"});
  ASSERT_EQ(a.exit_code, -1);
  EXPECT_EQ(a.config.frontend, "fanotify");
  EXPECT_EQ(a.config.control_socket, "/x.sock");
  EXPECT_EQ(Parse({"--store", "/s", "--cache-dir", "/c", "--frontend", "fuse"}).exit_code, 2);
  // The simulator is a cachefiles simulator.
  EXPECT_EQ(Parse({"--store", "/s", "--sim-socket", "/k", "--frontend", "fanotify"}).exit_code, 2);
  char path[] = "/tmp/lazyblobd-config-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "frontend = \"fanotify\"\ncontrol_socket = \"/t.sock\"\n";
  a = Parse({"--config", path, "--store", "/s", "--cache-dir", "/c"});
  ::unlink(path);
  ASSERT_EQ(a.exit_code, -1);
  EXPECT_EQ(a.config.frontend, "fanotify");
  EXPECT_EQ(a.config.control_socket, "/t.sock");
}

// Issue 14 (6): how many crashes poison a READ, and over what window, come from flags or
// the config file and are checked like every other setting.
TEST(LazyblobdConfig, ReadCrashLimitAndWindowFromFlagsAndFile) {
  ParsedArgs d = Parse({"--cache-dir", "/c"});
  ASSERT_EQ(d.exit_code, -1);
  EXPECT_EQ(d.config.read_crash_limit, 3);
  EXPECT_EQ(d.config.read_crash_window_s, 300);
  ParsedArgs a =
      Parse({"--cache-dir", "/c", "--read-crash-limit", "5", "--read-crash-window", "9"});
  ASSERT_EQ(a.exit_code, -1);
  EXPECT_EQ(a.config.read_crash_limit, 5);
  EXPECT_EQ(a.config.read_crash_window_s, 9);
  ConfigFile f("cache_dir = \"/c\"\nread_crash_limit = 0\nread_crash_window = 60\n");
  ParsedArgs b = Parse({"--config", f.path()});
  ASSERT_EQ(b.exit_code, -1);
  EXPECT_EQ(b.config.read_crash_limit, 0);
  EXPECT_EQ(b.config.read_crash_window_s, 60);
  EXPECT_EQ(Parse({"--cache-dir", "/c", "--read-crash-limit", "-1"}).exit_code, 2);
  EXPECT_EQ(Parse({"--cache-dir", "/c", "--read-crash-window", "0"}).exit_code, 2);
  auto [code, err] = ParseWithConfig("read_crash_window = \"5\"\n");
  EXPECT_EQ(code, 2) << err;
}

}  // namespace
}  // namespace lazyblob
