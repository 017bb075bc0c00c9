// Issue 15 (operator experience), the lazyblobd side, run as a user would run the binary:
// --version, exit 2 for every bad flag, every check done before the device is opened
// (store, metrics address, device type), --check-config, and no test-only flags in help.
#include <sys/stat.h>

#include "tests/tools/lazyblob_cli_test_util.h"

#ifdef LAZYBLOBD_BIN

namespace lazyblob::testing {
namespace {

namespace fs = std::filesystem;

class LazyblobdCliTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    // A real (empty) store and a cache dir, so only the thing under test is wrong.
    ASSERT_EQ(Lb({"init"}).exit_code, 0);
    fs::create_directories(dir_ / "cache");
  }
  RunResult Daemon(std::vector<std::string> args) {
    args.insert(args.begin(), LAZYBLOBD_BIN);
    return RunProcess(args, dir_);
  }
  std::vector<std::string> Base() {
    return {"--store", store_.string(), "--cache-dir", (dir_ / "cache").string()};
  }
  static void ExpectUsage(const RunResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
  }
};

TEST_F(LazyblobdCliTest, VersionPrintsTheVersionAndExitsZero) {
  RunResult r = Daemon({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("lazyblobd 0.", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("(git "), std::string::npos) << r.out;
}

TEST_F(LazyblobdCliTest, EveryBadFlagExitsTwo) {
  ExpectUsage(Daemon({"--threads", "abc"}), "--threads");
  ExpectUsage(Daemon({"--no-such-flag"}), "no-such-flag");
  ExpectUsage(Daemon({"--write-ahead", "1Q"}), "--write-ahead");
  std::vector<std::string> bad_listen = Base();
  bad_listen.insert(bad_listen.end(), {"--metrics-listen", "localhost:http"});
  ExpectUsage(Daemon(bad_listen), "--metrics-listen");
}

TEST_F(LazyblobdCliTest, Ipv6MetricsAddressIsRefusedSayingWhy) {
  std::vector<std::string> args = Base();
  args.insert(args.end(), {"--metrics-listen", "[::1]:9153", "--check-config"});
  RunResult r = Daemon(args);
  ExpectUsage(r, "IPv6 is not supported");
  EXPECT_EQ(r.err.find("null context"), std::string::npos) << r.err;
}

TEST_F(LazyblobdCliTest, MissingStoreIsReportedBeforeTheDevice) {
  // The device is a regular file: had the daemon opened it first, it would have written
  // device commands into it (and complained about the device, not the store).
  const fs::path device = File("device", "untouched");
  RunResult r = Daemon({"--store", (dir_ / "nope").string(), "--cache-dir",
                        (dir_ / "cache").string(), "--device", device.string()});
  ExpectUsage(r, "--store " + (dir_ / "nope").string() + ": no such directory");
  EXPECT_EQ(ReadFile(device), "untouched");
}

TEST_F(LazyblobdCliTest, ADeviceThatIsNotTheCachefilesDeviceIsRefusedUntouched) {
  const fs::path device = File("somefile", "precious data\n");
  std::vector<std::string> args = Base();
  args.insert(args.end(), {"--device", device.string()});
  ExpectUsage(Daemon(args), "is not a character device");
  EXPECT_EQ(ReadFile(device), "precious data\n");
  args = Base();
  args.insert(args.end(), {"--device", "/dev/zero"});
  ExpectUsage(Daemon(args), "/dev/zero is character device 1:5");
}

TEST_F(LazyblobdCliTest, CheckConfigValidatesAndExits) {
  std::vector<std::string> args = Base();
  args.insert(args.end(), {"--sim-socket", (dir_ / "no.sock").string(), "--check-config"});
  RunResult ok = Daemon(args);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("configuration OK"), std::string::npos) << ok.out;
  const fs::path config = File("bad.toml", "store = 5\n");
  ExpectUsage(Daemon({"--config", config.string(), "--check-config"}),
              "bad.toml:1:9: 'store' must be a string, not an integer");
}

TEST_F(LazyblobdCliTest, HelpShowsNoTestOnlyFlags) {
  RunResult r = Daemon({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.find("sim"), std::string::npos) << r.out;
  for (const char* flag :
       {"--check-config", "--version", "--stop-timeout", "--log-format", "--metrics-blob-series"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
  RunResult missing = Daemon({"--store", store_.string()});
  ExpectUsage(missing, "--cache-dir is required");
  EXPECT_EQ(missing.err.find("sim"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace lazyblob::testing

#endif  // LAZYBLOBD_BIN
