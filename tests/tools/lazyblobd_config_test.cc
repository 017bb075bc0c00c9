#include "tools/lazyblobd_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace lazyblob {
namespace {

ParsedArgs Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "lazyblobd");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseDaemonArgs(static_cast<int>(argv.size()), argv.data());
}

TEST(LazyblobdConfig, ParseSizeTakesBinaryUnits) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("512K"), 512u << 10);
  EXPECT_EQ(*ParseSize("1M"), 1u << 20);
  EXPECT_EQ(*ParseSize("256MiB"), 256u << 20);
  EXPECT_EQ(*ParseSize("2g"), 2ull << 30);
  EXPECT_FALSE(ParseSize("").ok());
  EXPECT_FALSE(ParseSize("12X").ok());
  EXPECT_FALSE(ParseSize("M").ok());
  EXPECT_FALSE(ParseSize("99999999999999999999").ok());
}

TEST(LazyblobdConfig, FlagsWinOverTheConfigFile) {
  char path[] = "/tmp/lazyblobd-config-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "store = \"/from/toml\"\nsim_socket = \"/s\"\nwrite_ahead = \"2M\"\n"
                         "chunk_cache = \"64M\"\nthreads = 3\nprefetch = true\n"
                         "log_level = \"warn\"\n";
  ParsedArgs a = Parse({"--config", path, "--store", "/from/flag", "--write-ahead", "512K"});
  ::unlink(path);
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

TEST(LazyblobdConfig, MissingStoreOrCacheDirIsAUsageError) {
  EXPECT_EQ(Parse({"--cache-dir", "/c"}).exit_code, 2);
  EXPECT_EQ(Parse({"--store", "/s"}).exit_code, 2);
  EXPECT_EQ(Parse({"--store", "/s", "--cache-dir", "/c", "--write-ahead", "1Q"}).exit_code, 2);
  ParsedArgs ok = Parse({"--store", "/s", "--cache-dir", "/c", "--no-supervisor"});
  EXPECT_EQ(ok.exit_code, -1);
  EXPECT_FALSE(ok.config.supervisor);
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

}  // namespace
}  // namespace lazyblob
