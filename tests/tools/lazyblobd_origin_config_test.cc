// lazyblobd's --origin* flags and [origin] TOML table.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "tools/lazyblobd_config.h"

namespace lazyblob {
namespace {

ParsedArgs Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "lazyblobd");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseDaemonArgs(static_cast<int>(argv.size()), argv.data());
}

TEST(LazyblobdOriginConfig, TheOriginTableIsReadAndFlagsWin) {
  char path[] = "/tmp/lazyblobd-origin-config-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "sim_socket = \"/s\"\n[origin]\nregistry = \"reg.example/lazy\"\n"
                         "cache_dir = \"/o\"\ncache_size = \"1G\"\nauth_file = \"/a.json\"\n"
                         "ca_file = \"/ca.pem\"\ntimeout = 2.5\nretries = 4\n"
                         "max_request = \"1M\"\nahead_requests = 9\n";
  ParsedArgs a = Parse({"--config", path, "--origin-retries", "1", "--origin-max-request", "512K"});
  ::unlink(path);
  ASSERT_EQ(a.exit_code, -1);
  const OriginConfig& o = a.config.origin;
  EXPECT_TRUE(o.enabled());
  EXPECT_EQ(o.registry, "reg.example/lazy");
  EXPECT_EQ(o.cache_dir, "/o");
  EXPECT_EQ(o.cache_bytes, 1ull << 30);
  EXPECT_EQ(o.auth_file, "/a.json");
  EXPECT_EQ(o.ca_file, "/ca.pem");
  EXPECT_DOUBLE_EQ(o.timeout_s, 2.5);
  EXPECT_EQ(o.retries, 1);
  EXPECT_EQ(o.max_request_bytes, 512u << 10);
  EXPECT_EQ(o.ahead_requests, 9);
  EXPECT_TRUE(a.config.store_dir.empty()) << "--store is optional with an origin";
}

TEST(LazyblobdOriginConfig, BadOriginSettingsAreUsageErrors) {
  const std::vector<std::string> base = {"--sim-socket", "/s", "--origin", "r.example/x"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> args = base;
    args.insert(args.end(), more.begin(), more.end());
    return Parse(args).exit_code;
  };
  EXPECT_EQ(with({}), 2) << "--origin needs --origin-cache";
  EXPECT_EQ(with({"--origin-cache", "/o"}), -1);
  EXPECT_EQ(with({"--origin-cache", "/o", "--origin-timeout", "0"}), 2);
  EXPECT_EQ(with({"--origin-cache", "/o", "--origin-retries", "11"}), 2);
  EXPECT_EQ(with({"--origin-cache", "/o", "--origin-cache-size", "1M"}), 2);
  EXPECT_EQ(with({"--origin-cache", "/o", "--origin-max-request", "9Q"}), 2);
  EXPECT_EQ(with({"--origin-cache", "/o", "--origin-ahead-requests", "0"}), 2);
  EXPECT_EQ(with({"--origin-cache", "/o", "--origin-ahead-requests", "65"}), 2);
  // Without an origin the default store is used (and checked before the device opens).
  ParsedArgs plain = Parse({"--sim-socket", "/s"});
  EXPECT_EQ(plain.exit_code, -1);
  EXPECT_EQ(plain.config.store_dir, kDefaultDaemonStore);
}

}  // namespace
}  // namespace lazyblob
