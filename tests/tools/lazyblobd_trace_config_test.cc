// lazyblobd's --trace-* flags and [trace] TOML table (issue 16).
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

TEST(LazyblobdTraceConfig, TheTraceTableReachesTheEngineAndFlagsWin) {
  char path[] = "/tmp/lazyblobd-trace-config-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "sim_socket = \"/s\"\n[trace]\nrecord = 12.5\nreplay = false\n"
                         "replay_bandwidth = \"8M\"\nreplay_stop_after = 5\n"
                         "record_write_ahead = \"64K\"\n";
  ParsedArgs a = Parse({"--config", path, "--trace-replay-stop-after", "7"});
  ::unlink(path);
  ASSERT_EQ(a.exit_code, -1);
  const EngineOptions eo = a.config.engine();
  EXPECT_EQ(eo.trace.record_window, std::chrono::milliseconds(12500));
  EXPECT_FALSE(eo.trace.replay);
  EXPECT_EQ(eo.trace.replay_bytes_per_second, 8u << 20);
  EXPECT_EQ(eo.trace.replay_stop_after_off_record, 7);
  EXPECT_EQ(eo.trace.record_write_ahead_bytes, 64u << 10);
  EXPECT_EQ(eo.trace.store, nullptr) << "the worker opens the store";
}

TEST(LazyblobdTraceConfig, DefaultsRecordNothingAndReplayUnbounded) {
  ParsedArgs a = Parse({"--sim-socket", "/s"});
  ASSERT_EQ(a.exit_code, -1);
  const EngineOptions eo = a.config.engine();
  EXPECT_EQ(eo.trace.record_window.count(), 0);
  EXPECT_TRUE(eo.trace.replay);
  EXPECT_EQ(eo.trace.replay_bytes_per_second, 0u);
  EXPECT_EQ(eo.trace.record_write_ahead_bytes, 256u << 10);
  EXPECT_EQ(a.config.trace_dir_base(), a.config.store_dir);
}

TEST(LazyblobdTraceConfig, FlagsAndBadValues) {
  ParsedArgs a = Parse({"--sim-socket", "/s", "--trace-record", "30", "--no-trace-replay",
                        "--trace-replay-bandwidth", "25M", "--trace-record-write-ahead", "1M"});
  ASSERT_EQ(a.exit_code, -1);
  EXPECT_EQ(a.config.engine().trace.record_window, std::chrono::seconds(30));
  EXPECT_FALSE(a.config.trace_replay);
  EXPECT_EQ(a.config.trace_replay_bandwidth, 25u << 20);
  EXPECT_EQ(a.config.engine().trace.record_write_ahead_bytes, 1u << 20);
  EXPECT_EQ(Parse({"--sim-socket", "/s", "--trace-record-write-ahead", "2G"}).exit_code, 2);
  EXPECT_EQ(Parse({"--sim-socket", "/s", "--trace-record", "-1"}).exit_code, 2);
  EXPECT_EQ(Parse({"--sim-socket", "/s", "--trace-record", "3601"}).exit_code, 2);
  EXPECT_EQ(Parse({"--sim-socket", "/s", "--trace-replay-bandwidth", "1Q"}).exit_code, 2);
  EXPECT_EQ(Parse({"--sim-socket", "/s", "--trace-replay-stop-after", "-2"}).exit_code, 2);
}

}  // namespace
}  // namespace lazyblob
