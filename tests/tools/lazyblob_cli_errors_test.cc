// Runs the built `lazyblob` binary on bad input, damaged stores and full disks: exit codes
// (0 ok, 1 data problem, 2 bad usage/input), one-line errors, and a store left as it was.
#include <sys/file.h>
#include <sys/mount.h>

#include "tests/tools/lazyblob_cli_test_util.h"

namespace lazyblob::testing {
namespace {

namespace fs = std::filesystem;

class CliErrorsTest : public CliTest {
 protected:
  // Exit 2 with exactly one stderr line starting "lazyblob: VERB: " and containing `what`.
  static void ExpectBadInput(const RunResult& r, const std::string& verb, const std::string& what) {
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    const auto lines = r.ErrLines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("lazyblob: " + verb + ": ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(what), std::string::npos) << lines[0];
  }
  // The state a failed command must not change.
  std::string Snapshot() {
    RunResult ls = Lb({"ls", "--json"});
    RunResult st = Lb({"stat", "--json"});
    return ls.out + st.out;
  }
  void ExpectVerifiesClean() {
    RunResult v = Lb({"verify", "--json"});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  }
};

TEST_F(CliErrorsTest, MissingFileIsOneLineAndCreatesNoStore) {
  const std::string missing = (dir_ / "nope.img").string();
  ExpectBadInput(Lb({"import", "--force", missing}), "import", missing + ": no such file");
  EXPECT_FALSE(fs::exists(store_));
}

TEST_F(CliErrorsTest, EmptyFileAndDirectoryAreRefused) {
  ExpectBadInput(Lb({"import", "--force", File("empty", "").string()}), "import", "empty file");
  ExpectBadInput(Lb({"import", "--force", dir_.string()}), "import", "is a directory");
}

TEST_F(CliErrorsTest, NoStoreIsExit2ForEveryReader) {
  for (const char* verb : {"ls", "stat", "verify", "gc", "rebuild-index"}) {
    ExpectBadInput(Lb({verb}), verb, "no store");
  }
}

TEST_F(CliErrorsTest, UnknownIdForExportRmVerifyIsExit2) {
  ASSERT_EQ(
      Lb({"import", "--force", File("a", RandomBytes(50000, 1)).string(), "--id", "a"}).exit_code,
      0);
  const std::string before = Snapshot();
  ExpectBadInput(Lb({"export", "ghost", (dir_ / "out").string()}), "export", "ghost");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  ExpectBadInput(Lb({"rm", "ghost"}), "rm", "ghost");
  ExpectBadInput(Lb({"verify", "ghost"}), "verify", "ghost");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(CliErrorsTest, IdWithCommaIsRefused) {
  const fs::path f = File("a", RandomBytes(50000, 2));
  ExpectBadInput(Lb({"import", "--force", f.string(), "--id", "a,b"}), "import", "--id");
  ExpectBadInput(Lb({"import", "--force", f.string(), "--id", std::string(256, 'x')}), "import",
                 "--id");
  EXPECT_FALSE(fs::exists(store_));
  EXPECT_EQ(Lb({"import", "--force", f.string(), "--id", std::string(255, 'x')}).exit_code, 0);
}

TEST_F(CliErrorsTest, IdReusedForOtherContentLeavesStoreUnchanged) {
  ASSERT_EQ(Lb({"import", "--force", File("a", RandomBytes(200000, 3)).string(), "--id", "app"})
                .exit_code,
            0);
  const std::string before = Snapshot();
  const RunResult r =
      Lb({"import", "--force", File("b", RandomBytes(200000, 4)).string(), "--id", "app"});
  ExpectBadInput(r, "import", "app");
  EXPECT_EQ(Snapshot(), before);
  ExpectVerifiesClean();
}

TEST_F(CliErrorsTest, StoreLockedByAnotherWriterIsExit2) {
  ASSERT_EQ(
      Lb({"import", "--force", File("a", RandomBytes(50000, 5)).string(), "--id", "a"}).exit_code,
      0);
  // store/FORMAT.md "Locks": the writer holds LOCK_EX on <store>/LOCK.
  const int fd = open((store_ / "LOCK").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  const std::string before = Snapshot();  // readers still work
  ExpectBadInput(Lb({"import", "--force", File("b", RandomBytes(50000, 6)).string()}), "import",
                 "locked");
  ExpectBadInput(Lb({"rm", "a"}), "rm", "locked");
  ExpectBadInput(Lb({"gc"}), "gc", "locked");
  close(fd);
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(CliErrorsTest, FlippedPackByteIsExit1NamingChunkAndBlob) {
  // Incompressible data is stored raw, so most of the pack is chunk payload.
  ASSERT_EQ(Lb({"import", "--force", File("a", RandomBytes(1 << 20, 7)).string(), "--id", "victim"})
                .exit_code,
            0);
  ASSERT_EQ(
      Lb({"import", "--force", File("b", RandomBytes(1 << 20, 8)).string(), "--id", "bystander"})
          .exit_code,
      0);
  fs::path pack;
  for (const auto& e : fs::directory_iterator(store_ / "packs")) {
    if (e.path().extension() == ".lbp") pack = std::min(pack.empty() ? e.path() : pack, e.path());
  }
  ASSERT_FALSE(pack.empty());
  std::string bytes = ReadFile(pack);
  ASSERT_GT(bytes.size(), 512u << 10);
  // The first pack starts with the first import's chunks (its blob record follows them).
  bytes[bytes.size() / 4] ^= 0x5a;
  WriteFile(pack, bytes);

  RunResult human = Lb({"verify"});
  EXPECT_EQ(human.exit_code, 1) << human.out << human.err;
  EXPECT_NE(human.out.find("CORRUPT chunk "), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("victim"), std::string::npos) << human.out;

  RunResult json = Lb({"verify", "--json"});
  EXPECT_EQ(json.exit_code, 1);
  const nlohmann::json j = json.Json();
  EXPECT_FALSE(j["clean"].get<bool>());
  ASSERT_EQ(j["corrupt"].size(), 1u) << j.dump();
  EXPECT_EQ(j["corrupt"][0]["chunk"].get<std::string>().size(), 32u);
  EXPECT_EQ(j["corrupt"][0]["blobs"], nlohmann::json::array({"victim"}));

  // The damaged blob cannot be exported (no partial file); the other one still can.
  RunResult exp = Lb({"export", "victim", (dir_ / "v.out").string()});
  EXPECT_EQ(exp.exit_code, 1) << exp.err;
  EXPECT_FALSE(fs::exists(dir_ / "v.out"));
  EXPECT_EQ(Lb({"verify", "bystander"}).exit_code, 0);
  EXPECT_EQ(Lb({"export", "bystander", (dir_ / "b.out").string()}).exit_code, 0);
  EXPECT_TRUE(ReadFile(dir_ / "b.out") == ReadFile(dir_ / "b"));
}

TEST_F(CliErrorsTest, RmThenGcReclaimsSpace) {
  ASSERT_EQ(
      Lb({"import", "--force", File("a", RandomBytes(1 << 20, 9)).string(), "--id", "a"}).exit_code,
      0);
  ASSERT_EQ(Lb({"import", "--force", File("b", RandomBytes(1 << 20, 10)).string(), "--id", "b"})
                .exit_code,
            0);
  const auto before = Lb({"stat", "--json"}).Json();
  RunResult rm = Lb({"rm", "a"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  const auto after_rm = Lb({"stat", "--json"}).Json();  // rm appended a tombstone
  RunResult dry = Lb({"gc", "--dry-run", "--json"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_GT(dry.Json()["bytes_reclaimed"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(Lb({"stat", "--json"}).Json()["pack_file_bytes"], after_rm["pack_file_bytes"]);

  RunResult gc = Lb({"gc", "--json"});
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  const nlohmann::json g = gc.Json();
  EXPECT_GE(g["bytes_reclaimed"].get<std::uint64_t>(), 1u << 20);
  const auto after = Lb({"stat", "--json"}).Json();
  EXPECT_EQ(after["blobs"], 1);
  EXPECT_LT(after["pack_file_bytes"].get<std::uint64_t>(),
            before["pack_file_bytes"].get<std::uint64_t>() - (1u << 20) / 2);
  ExpectVerifiesClean();
  ASSERT_EQ(Lb({"export", "b", (dir_ / "b.out").string()}).exit_code, 0);
  EXPECT_TRUE(ReadFile(dir_ / "b.out") == ReadFile(dir_ / "b"));
}

TEST_F(CliErrorsTest, RebuildIndexAfterDeletingIndexRestoresLs) {
  ASSERT_EQ(
      Lb({"import", "--force", File("a", RandomBytes(300000, 11)).string(), "--id", "a"}).exit_code,
      0);
  ASSERT_EQ(
      Lb({"import", "--force", File("b", RandomBytes(300000, 12)).string(), "--id", "b"}).exit_code,
      0);
  ASSERT_EQ(Lb({"rm", "b"}).exit_code, 0);
  const std::string ls_before = Lb({"ls", "--json"}).out;
  fs::remove_all(store_ / "index");
  EXPECT_NE(Lb({"ls"}).exit_code, 0);
  RunResult rebuild = Lb({"rebuild-index", "--json"});
  ASSERT_EQ(rebuild.exit_code, 0) << rebuild.out << rebuild.err;
  EXPECT_EQ(rebuild.Json()["blobs"], 1);
  EXPECT_EQ(Lb({"ls", "--json"}).out, ls_before);
  ExpectVerifiesClean();
}

TEST_F(CliErrorsTest, DiskFullIsExit2AndKeepsEarlierBlobs) {
  const fs::path mnt = dir_ / "small";
  fs::create_directories(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=16m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << strerror(errno);
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const fs::path store = mnt / "store";
  const fs::path small = File("small.bin", RandomBytes(1 << 20, 13));
  ASSERT_EQ(LbAt(store, {"import", "--force", small.string(), "--id", "small"}).exit_code, 0);
  const RunResult ls_before = LbAt(store, {"ls", "--json"});

  RunResult full = LbAt(
      store,
      {"import", "--force", File("big.bin", RandomBytes(24 << 20, 14)).string(), "--id", "big"});
  EXPECT_EQ(full.exit_code, 2) << full.out << full.err;
  const auto lines = full.ErrLines();
  ASSERT_EQ(lines.size(), 1u) << full.err;
  EXPECT_NE(lines[0].find("no space left"), std::string::npos) << lines[0];

  EXPECT_EQ(LbAt(store, {"ls", "--json"}).out, ls_before.out);
  RunResult verify = LbAt(store, {"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  ASSERT_EQ(LbAt(store, {"export", "small", (dir_ / "small.out").string()}).exit_code, 0);
  EXPECT_TRUE(ReadFile(dir_ / "small.out") == ReadFile(small));
}

TEST_F(CliErrorsTest, BadUsageIsExit2) {
  EXPECT_EQ(RunProcess({LAZYBLOB_BIN}, dir_).exit_code, 2);
  ExpectBadInput(Lb({"frobnicate"}), "usage", "frobnicate");
  ExpectBadInput(Lb({"import"}), "import", "FILE");
  ExpectBadInput(Lb({"import", "--force", "x", "--zstd-level", "99"}), "import", "zstd-level");
}

TEST_F(CliErrorsTest, RegistryFlagsAreCheckedBeforeAnythingIsSent) {
  // Nothing listens on port 1: any of these would be exit 3 if they reached the network.
  const std::string reg = "http://127.0.0.1:1/repo";
  EXPECT_EQ(Lb({"push", "a"}).exit_code, 2);  // --registry is required
  EXPECT_EQ(Lb({"pull", "a"}).exit_code, 2);
  ExpectBadInput(Lb({"pull", "--registry", "127.0.0.1:1", "a"}), "pull", "HOST[:PORT]/REPOSITORY");
  ExpectBadInput(Lb({"pull", "--registry", "h/Upper", "a"}), "pull", "lower-case");
  ExpectBadInput(Lb({"push", "--registry", reg, "a,b"}), "push", "','");
  ExpectBadInput(Lb({"pull", "--registry", reg, "a", "--max-request", "12Q"}), "pull",
                 "--max-request");
  ExpectBadInput(Lb({"push", "--registry", reg, "a", "--bundle-size", "1.5M"}), "push",
                 "--bundle-size");
  ExpectBadInput(Lb({"ls", "--registry", reg, "--auth-file", (dir_ / "none.json").string()}), "ls",
                 "none.json");
  ExpectBadInput(Lb({"ls", "--registry", reg, "--ca-file", (dir_ / "none.pem").string()}), "ls",
                 "none.pem");
  ExpectBadInput(Lb({"ls", "--registry", reg, "--timeout", "0"}), "ls", "--timeout");
  const fs::path bad_auth = File("auth.json", R"({"auths": {"127.0.0.1:1": {"auth": "%%%"}}})");
  RunResult r = Lb({"ls", "--registry", reg, "--auth-file", bad_auth.string()});
  ExpectBadInput(r, "ls", "auth.json");
  EXPECT_EQ(r.err.find("%%%"), std::string::npos) << r.err;
  EXPECT_EQ(Lb({"pull", "--registry", reg, "a", "--parallel", "0"}).exit_code, 2);
  // A well-formed pull to a closed port: exit 3, one line, bounded by --retries.
  RunResult down = Lb({"pull", "--registry", reg, "a", "--retries", "1", "--json"});
  EXPECT_EQ(down.exit_code, 3) << down.err;
  EXPECT_EQ(down.ErrLines().size(), 1u) << down.err;
  EXPECT_NE(down.err.find("2 attempts"), std::string::npos) << down.err;
  EXPECT_EQ(down.Json()["error"]["code"], "IoError");
}

}  // namespace
}  // namespace lazyblob::testing
