// Issue 15 (operator experience), the lazyblob CLI side: what is imported is checked
// (EROFS superblock, size, id), import and verify report what they did, and the
// ergonomics restic and borg users look for (--quiet, --lock-wait, --no-clobber, stdin,
// ls/stat ID, a mixed-chunker warning, --version).
#include <sys/file.h>

#include <fstream>
#include <thread>

#include "tests/tools/lazyblob_cli_test_util.h"

namespace lazyblob::testing {
namespace {

namespace fs = std::filesystem;

class CliOpsTest : public CliTest {
 protected:
  // A real EROFS image of a small tree (3 MiB of file data), built by mkfs.erofs.
  fs::path ErofsImage(const std::string& name, std::uint64_t seed) {
    const fs::path tree = dir_ / (name + ".tree");
    fs::create_directories(tree / "d");
    WriteFile(tree / "d" / "big.bin", RandomBytes(3 << 20, seed));
    WriteFile(tree / "small.txt", "hello\n");
    const fs::path image = dir_ / (name + ".erofs");
    const std::string cmd =
        "mkfs.erofs -T0 " + image.string() + " " + tree.string() + " >/dev/null 2>&1";
    EXPECT_EQ(system(cmd.c_str()), 0) << cmd;
    return image;
  }
  // Exit 2, one stderr line "lazyblob: import: ..." containing `what`, and no store made.
  void ExpectRefused(const RunResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    const auto lines = r.ErrLines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("lazyblob: import: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(what), std::string::npos) << lines[0];
    EXPECT_FALSE(fs::exists(store_));
  }
};

// --- item 1: import accepts only what the kernel can serve ---------------------------

TEST_F(CliOpsTest, ImportRefusesFilesThatAreNotErofsImages) {
  ExpectRefused(Lb({"import", File("passwd", "root:x:0:0:root:/root:/bin/bash\n").string()}),
                "not an EROFS image");
  ExpectRefused(Lb({"import", File("random", RandomBytes(1 << 20, 1)).string()}),
                "no EROFS magic at byte 1024");
  ExpectRefused(Lb({"import", File("random", RandomBytes(1 << 20, 1)).string()}), "--force");
}

TEST_F(CliOpsTest, ImportRefusesATruncatedImage) {
  const fs::path image = ErofsImage("app", 2);
  ASSERT_GT(fs::file_size(image), 2'000'000u);
  fs::resize_file(image, 2'000'000);
  ExpectRefused(Lb({"import", image.string()}), "truncated");
}

TEST_F(CliOpsTest, ImportRefusesABlockSizeTheCachefilesBackendCannotServe) {
  const fs::path image = ErofsImage("app", 3);
  {
    std::fstream f(image, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1024 + 8);  // feature_compat: drop the checksum bit so only blkszbits is wrong
    const char compat[4] = {0, 0, 0, 0};
    f.write(compat, 4);
    f.seekp(1024 + 12);  // blkszbits
    f.put(9);
  }
  ExpectRefused(Lb({"import", image.string()}), "block size 512");
}

TEST_F(CliOpsTest, ImportAcceptsARealImageAndOneEndingInsideItsLastBlock) {
  const fs::path image = ErofsImage("app", 4);
  RunResult r = Lb({"import", image.string(), "--id", "app"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The VM suite's "tail" image: the kernel zero-fills the rest of the last block.
  fs::resize_file(image, fs::file_size(image) - 100);
  r = Lb({"import", image.string(), "--id", "app-tail"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CliOpsTest, ForceImportsARawBlob) {
  RunResult r =
      Lb({"import", "--force", File("blobdev", RandomBytes(100000, 5)).string(), "--id", "raw"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CliOpsTest, EmptyIdAndIdStartingWithDashAreRefused) {
  const fs::path image = ErofsImage("app", 6);
  ExpectRefused(Lb({"import", image.string(), "--id", ""}), "--id: empty");
  ExpectRefused(Lb({"import", image.string(), "--id=-rf"}), "starts with '-'");
}

// --- item 7: reporting -----------------------------------------------------------------

TEST_F(CliOpsTest, ImportReportsReusedBytesDedupTimeAndThroughput) {
  const fs::path image = ErofsImage("app", 7);
  ASSERT_EQ(Lb({"import", image.string(), "--id", "v1"}).exit_code, 0);
  RunResult again = Lb({"import", image.string(), "--id", "v2", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const nlohmann::json j = again.Json();
  EXPECT_EQ(j["reused_bytes"].get<std::uint64_t>(), fs::file_size(image)) << j.dump();
  EXPECT_EQ(j["new_bytes"].get<std::uint64_t>(), 0u) << j.dump();
  EXPECT_DOUBLE_EQ(j["dedup_percent"].get<double>(), 100.0) << j.dump();
  EXPECT_GE(j["elapsed_s"].get<double>(), 0.0);
  EXPECT_TRUE(j.contains("bytes_per_s")) << j.dump();
  EXPECT_TRUE(j["version"].is_string()) << j.dump();

  RunResult text = Lb({"import", image.string(), "--id", "v3"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("(100.0% deduplicated)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("/s)"), std::string::npos) << text.out;
}

TEST_F(CliOpsTest, VerifyReportsThroughputAndEveryJsonHasAVersion) {
  ASSERT_EQ(Lb({"import", ErofsImage("app", 8).string(), "--id", "a"}).exit_code, 0);
  RunResult v = Lb({"verify", "--json"});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_TRUE(v.Json().contains("chunks_per_s")) << v.out;
  EXPECT_TRUE(v.Json().contains("elapsed_s")) << v.out;
  RunResult text = Lb({"verify"});
  EXPECT_NE(text.out.find("chunks/s"), std::string::npos) << text.out;
  for (std::vector<std::string> args : {std::vector<std::string>{"ls", "--json"},
                                        {"stat", "--json"},
                                        {"gc", "--dry-run", "--json"},
                                        {"verify", "--json"},
                                        {"export", "ghost", "x", "--json"}}) {
    RunResult r = Lb(args);
    EXPECT_TRUE(r.Json()["version"].is_string()) << args[0] << ": " << r.out;
  }
}

TEST_F(CliOpsTest, VersionFlagPrintsTheVersionAndExitsZero) {
  RunResult r = RunProcess({LAZYBLOB_BIN, "--version"}, dir_);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("lazyblob 0.", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("(git "), std::string::npos) << r.out;
}

// --- item 8: ergonomics -------------------------------------------------------------------

TEST_F(CliOpsTest, QuietPrintsNothingOnSuccessButStillReportsErrors) {
  RunResult r = Lb({"import", "-q", ErofsImage("app", 9).string(), "--id", "a"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");  // not even "created a new store"
  EXPECT_EQ(Lb({"-q", "rm", "a"}).out, "");
  RunResult bad = Lb({"-q", "rm", "a"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("no blob 'a'"), std::string::npos) << bad.err;
}

TEST_F(CliOpsTest, LockWaitWaitsForTheOtherWriterInsteadOfFailing) {
  ASSERT_EQ(Lb({"import", ErofsImage("app", 10).string(), "--id", "a"}).exit_code, 0);
  const int fd = open((store_ / "LOCK").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  RunResult r;
  std::thread writer([&] { r = Lb({"rm", "a", "--lock-wait", "600"}); });
  // Release the lock once the writer says it waits (its stderr is a file in dir_).
  bool waiting = false;
  for (int i = 0; i < 6000 && !waiting; ++i) {
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".err" &&
          ReadFile(e.path()).find("waiting up to") != std::string::npos) {
        waiting = true;
      }
    }
    if (!waiting) usleep(10'000);
  }
  close(fd);
  writer.join();
  EXPECT_TRUE(waiting);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("locked by another writer"), std::string::npos) << r.err;
}

TEST_F(CliOpsTest, ExportNoClobberKeepsAnExistingFile) {
  ASSERT_EQ(Lb({"import", ErofsImage("app", 11).string(), "--id", "a"}).exit_code, 0);
  const fs::path out = File("existing", "keep me");
  RunResult r = Lb({"export", "--no-clobber", "a", out.string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("exists"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(out), "keep me");
  EXPECT_EQ(Lb({"export", "a", out.string()}).exit_code, 0);  // without it: replaced
  EXPECT_NE(ReadFile(out), "keep me");
}

TEST_F(CliOpsTest, ImportReadsStandardInputFromAPipeOrAFile) {
  const fs::path image = ErofsImage("app", 12);
  const std::string cmd = std::string("cat '") + image.string() + "' | '" + LAZYBLOB_BIN +
                          "' --store '" + store_.string() + "' import - --id piped --json";
  RunResult piped = RunProcess({"/bin/bash", "-c", cmd}, dir_);
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.Json()["size"].get<std::uint64_t>(), fs::file_size(image));
  EXPECT_EQ(piped.Json()["file"], "stdin");
  RunResult redirected =
      RunProcess({LAZYBLOB_BIN, "--store", store_.string(), "import", "-", "--id", "redirected"},
                 dir_, image.string());
  ASSERT_EQ(redirected.exit_code, 0) << redirected.err;
  const fs::path out = dir_ / "out";
  ASSERT_EQ(Lb({"export", "piped", out.string()}).exit_code, 0);
  EXPECT_TRUE(ReadFile(out) == ReadFile(image));
  // The EROFS check applies to stdin too.
  RunResult junk = RunProcess({LAZYBLOB_BIN, "--store", store_.string(), "import", "-"}, dir_,
                              File("junk", RandomBytes(10000, 13)).string());
  EXPECT_EQ(junk.exit_code, 2);
  EXPECT_NE(junk.err.find("lazyblob: import: stdin: not an EROFS image"), std::string::npos)
      << junk.err;
}

TEST_F(CliOpsTest, LsAndStatTakeOneBlobId) {
  const fs::path image = ErofsImage("app", 14);
  ASSERT_EQ(Lb({"import", image.string(), "--id", "a"}).exit_code, 0);
  ASSERT_EQ(
      Lb({"import", "--force", File("b", RandomBytes(9000, 15)).string(), "--id", "b"}).exit_code,
      0);
  RunResult ls = Lb({"ls", "a", "--json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  ASSERT_EQ(ls.Json()["blobs"].size(), 1u);
  EXPECT_EQ(ls.Json()["blobs"][0]["id"], "a");
  RunResult st = Lb({"stat", "a", "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  EXPECT_EQ(st.Json()["size"].get<std::uint64_t>(), fs::file_size(image));
  RunResult text = Lb({"stat", "a"});
  EXPECT_NE(text.out.find("sha256"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("\nb"), std::string::npos) << text.out;
  for (const char* verb : {"ls", "stat"}) {
    RunResult ghost = Lb({verb, "ghost"});
    EXPECT_EQ(ghost.exit_code, 2) << verb;
    EXPECT_NE(ghost.err.find("no blob 'ghost'"), std::string::npos) << ghost.err;
  }
}

TEST_F(CliOpsTest, MixingChunkerSettingsInOneStoreWarns) {
  ASSERT_EQ(Lb({"import", ErofsImage("app", 16).string(), "--id", "a"}).exit_code, 0);
  RunResult r = Lb({"import", ErofsImage("app2", 17).string(), "--id", "b", "--chunker", "fixed",
                    "--avg-chunk", "1M"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: chunker fixed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("will not dedup"), std::string::npos) << r.err;
  RunResult same = Lb({"import", ErofsImage("app3", 18).string(), "--id", "c"});
  EXPECT_EQ(same.err.find("warning"), std::string::npos) << same.err;
}

// --- item 5: a repair path -----------------------------------------------------------

// Re-importing the source stores nothing (its chunk keys exist), so before verify --repair
// a corrupt chunk could not be fixed at all.
TEST_F(CliOpsTest, VerifyRepairReplacesACorruptChunkFromTheSourceImage) {
  // Incompressible data is stored raw, so most of the pack is chunk payload.
  const fs::path source = File("victim.img", RandomBytes(1 << 20, 7));
  ASSERT_EQ(Lb({"import", "--force", source.string(), "--id", "victim"}).exit_code, 0);
  const fs::path pack = store_ / "packs" / "pack-000001.lbp";
  std::string bytes = ReadFile(pack);
  ASSERT_GT(bytes.size(), 512u << 10);
  bytes[bytes.size() / 3] ^= 0x5a;
  WriteFile(pack, bytes);
  RunResult before = Lb({"verify", "--json"});
  ASSERT_EQ(before.exit_code, 1) << before.out << before.err;
  ASSERT_EQ(before.Json()["corrupt"].size(), 1u) << before.out;

  RunResult repair = Lb({"verify", "--repair", source.string(), "--json"});
  EXPECT_EQ(repair.exit_code, 0) << repair.out << repair.err;
  const nlohmann::json j = repair.Json();
  EXPECT_TRUE(j["clean"].get<bool>()) << j.dump();
  EXPECT_EQ(j["chunks_repaired"], 1) << j.dump();
  EXPECT_GT(j["bytes_repaired"].get<std::uint64_t>(), 0u);
  EXPECT_TRUE(j["not_repaired"].empty());

  RunResult after = Lb({"verify"});
  EXPECT_EQ(after.exit_code, 0) << after.out << after.err;
  EXPECT_NE(after.out.find("verify: OK"), std::string::npos) << after.out;
  ASSERT_EQ(Lb({"export", "victim", (dir_ / "out").string()}).exit_code, 0);
  EXPECT_EQ(ReadFile(dir_ / "out"), ReadFile(source));
  // The damaged record is garbage now: gc may drop its pack (it refused before).
  RunResult gc = Lb({"gc"});
  EXPECT_EQ(gc.exit_code, 0) << gc.out << gc.err;
  EXPECT_EQ(Lb({"verify"}).exit_code, 0);
}

TEST_F(CliOpsTest, VerifyRepairNamesChunksNoSourceHolds) {
  const fs::path source = File("victim.img", RandomBytes(1 << 20, 7));
  ASSERT_EQ(Lb({"import", "--force", source.string(), "--id", "victim"}).exit_code, 0);
  const fs::path pack = store_ / "packs" / "pack-000001.lbp";
  std::string bytes = ReadFile(pack);
  bytes[bytes.size() / 3] ^= 0x5a;
  WriteFile(pack, bytes);
  const fs::path other = File("other.img", RandomBytes(1 << 20, 8));
  RunResult r = Lb({"verify", "--repair", other.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("repaired 0 corrupt chunks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NOT REPAIRED chunk "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CORRUPT chunk "), std::string::npos) << r.out;
}

TEST_F(CliOpsTest, RebuildIndexSaysItDoesNotCheckPayloads) {
  ASSERT_EQ(
      Lb({"import", "--force", File("a", RandomBytes(100000, 1)).string(), "--id", "a"}).exit_code,
      0);
  RunResult r = Lb({"rebuild-index"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("does not check chunk payloads"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lazyblob verify"), std::string::npos) << r.out;
}

TEST_F(CliOpsTest, GcErrorsNameTheVerbOnce) {
  // A live chunk gc cannot read: gc refuses, and says "gc:" once.
  ASSERT_EQ(
      Lb({"import", "--force", File("keep", RandomBytes(1 << 20, 3)).string(), "--id", "keep"})
          .exit_code,
      0);
  ASSERT_EQ(
      Lb({"import", "--force", File("drop", RandomBytes(1 << 20, 4)).string(), "--id", "drop"})
          .exit_code,
      0);
  ASSERT_EQ(Lb({"rm", "drop"}).exit_code, 0);
  const fs::path pack = store_ / "packs" / "pack-000001.lbp";
  std::string bytes = ReadFile(pack);
  bytes[80] ^= 0x5a;  // the first record's header: its checksum fails
  WriteFile(pack, bytes);
  RunResult r = Lb({"gc"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.err.find("gc: gc:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lazyblob: gc: "), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lazyblob::testing
