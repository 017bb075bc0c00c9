// Runs the built `lazyblob` binary against temp stores: round trips, JSON and Prometheus
// output, help texts. Failure paths and exit codes: lazyblob_cli_errors_test.cc.
#include <regex>
#include <set>

#include "tests/tools/lazyblob_cli_test_util.h"

namespace lazyblob::testing {
namespace {

namespace fs = std::filesystem;

TEST_F(CliTest, ImportThenExportIsByteIdentical) {
  // Unaligned tail on purpose: the last chunk is shorter than 4 KiB.
  const std::string data = RandomBytes(3 * 1024 * 1024 + 5000, 1);
  const fs::path src = File("random.bin", data);
  RunResult imp = Lb({"import", "--force", src.string(), "--id", "rand-1"});
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_NE(imp.out.find("rand-1"), std::string::npos) << imp.out;
  EXPECT_NE(imp.err.find("created a new store"), std::string::npos) << imp.err;

  const fs::path out = dir_ / "out.bin";
  RunResult exp = Lb({"export", "rand-1", out.string()});
  ASSERT_EQ(exp.exit_code, 0) << exp.err;
  EXPECT_EQ(ReadFile(out), data);

  // '-' streams to stdout.
  RunResult to_stdout = Lb({"export", "rand-1", "-"});
  ASSERT_EQ(to_stdout.exit_code, 0) << to_stdout.err;
  EXPECT_TRUE(to_stdout.out == data);
}

TEST_F(CliTest, ImportJsonHasExactNumbersAndSecondImportWritesNothing) {
  const std::string data = RandomBytes(1 << 20, 2);
  const fs::path src = File("a.bin", data);
  RunResult first = Lb({"import", "--force", src.string(), "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const nlohmann::json j = first.Json();
  for (const char* key : {"id", "size", "chunks", "new_chunks", "stored_bytes", "already_present",
                          "created_store", "file"}) {
    EXPECT_TRUE(j.contains(key)) << key << " missing in " << j.dump();
  }
  EXPECT_EQ(j["size"].get<std::uint64_t>(), data.size());
  EXPECT_EQ(j["chunks"], j["new_chunks"]);
  EXPECT_GT(j["stored_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_TRUE(j["created_store"].get<bool>());
  const std::string id = j["id"];
  EXPECT_FALSE(id.empty());

  // Same content again: the id is derived from the content, so it matches; nothing new.
  RunResult again = Lb({"import", "--force", src.string(), "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const nlohmann::json j2 = again.Json();
  EXPECT_EQ(j2["id"], id);
  EXPECT_EQ(j2["new_chunks"], 0);
  EXPECT_TRUE(j2["already_present"].get<bool>());
  EXPECT_FALSE(j2["created_store"].get<bool>());

  RunResult ls = Lb({"ls", "--json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  const nlohmann::json blobs = ls.Json()["blobs"];
  ASSERT_EQ(blobs.size(), 1u);
  EXPECT_EQ(blobs[0]["id"], id);
  EXPECT_EQ(blobs[0]["size"].get<std::uint64_t>(), data.size());
  EXPECT_EQ(blobs[0]["chunks"], j["chunks"]);
  EXPECT_TRUE(blobs[0].contains("created"));
}

TEST_F(CliTest, ImportHonoursChunkerFlags) {
  const fs::path src = File("f.bin", RandomBytes(1 << 20, 3));
  RunResult imp =
      Lb({"import", "--force", src.string(), "--chunker", "fixed", "--avg-chunk", "64K", "--json"});
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_EQ(imp.Json()["chunks"], 16);  // 1 MiB / 64 KiB
  RunResult ls = Lb({"ls", "--json"});
  EXPECT_EQ(ls.Json()["blobs"][0]["chunker"], "fixed:65536");

  const fs::path src2 = File("g.bin", RandomBytes(1 << 20, 4));
  RunResult mib = Lb({"import", "--force", src2.string(), "--chunker", "fixed", "--avg-chunk",
                      "256KiB", "--json"});
  ASSERT_EQ(mib.exit_code, 0) << mib.err;
  EXPECT_EQ(mib.Json()["chunks"], 4);

  // A fixed size below the store's default minimum is still one valid size.
  const fs::path src3 = File("h.bin", RandomBytes(64 << 10, 5));
  RunResult small =
      Lb({"import", "--force", src3.string(), "--chunker", "fixed", "--avg-chunk", "4K", "--json"});
  ASSERT_EQ(small.exit_code, 0) << small.err;
  EXPECT_EQ(small.Json()["chunks"], 16);

  RunResult bad = Lb({"import", "--force", src2.string(), "--avg-chunk", "12Q"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--avg-chunk"), std::string::npos) << bad.err;
}

TEST_F(CliTest, ImportsAndExportsARealErofsImage) {
  if (system("command -v mkfs.erofs >/dev/null 2>&1") != 0) GTEST_SKIP() << "no mkfs.erofs";
  const fs::path tree = dir_ / "tree";
  fs::create_directories(tree / "etc" / "app");
  fs::create_directories(tree / "usr" / "lib");
  WriteFile(tree / "etc" / "app" / "config.toml", "name = \"demo\"\nworkers = 4\n");
  WriteFile(tree / "usr" / "lib" / "libdemo.so", RandomBytes(700 * 1024, 5));
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + " of a text file\n";
  WriteFile(tree / "usr" / "lib" / "notes.txt", text);
  const fs::path image = dir_ / "demo.erofs";
  const std::string cmd = "mkfs.erofs " + image.string() + " " + tree.string() + " >/dev/null 2>&1";
  ASSERT_EQ(system(cmd.c_str()), 0);

  RunResult imp = Lb({"import", image.string(), "--id", "demo-v1", "--json"});
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_EQ(imp.Json()["size"].get<std::uint64_t>(), fs::file_size(image));
  const fs::path out = dir_ / "demo.out";
  ASSERT_EQ(Lb({"export", "demo-v1", out.string()}).exit_code, 0);
  EXPECT_TRUE(ReadFile(out) == ReadFile(image));
  RunResult verify = Lb({"verify", "demo-v1"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST_F(CliTest, StatJsonCountsBlobsAndDedup) {
  const std::string base = RandomBytes(1 << 20, 6);
  ASSERT_EQ(Lb({"import", "--force", File("a", base).string(), "--id", "a"}).exit_code, 0);
  // Same bytes under another id: all chunks shared.
  ASSERT_EQ(Lb({"import", "--force", File("b", base).string(), "--id", "b"}).exit_code, 0);
  RunResult st = Lb({"stat", "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  const nlohmann::json j = st.Json();
  for (const char* key : {"blobs", "chunks", "logical_bytes", "unique_bytes", "stored_bytes",
                          "dedup_ratio", "compression_ratio"}) {
    EXPECT_TRUE(j.contains(key)) << key << " missing in " << j.dump();
  }
  EXPECT_EQ(j["blobs"], 2);
  EXPECT_EQ(j["logical_bytes"].get<std::uint64_t>(), 2 * base.size());
  EXPECT_EQ(j["unique_bytes"].get<std::uint64_t>(), base.size());
  EXPECT_DOUBLE_EQ(j["dedup_ratio"].get<double>(), 2.0);

  RunResult human = Lb({"stat"});
  ASSERT_EQ(human.exit_code, 0);
  EXPECT_NE(human.out.find("2.00x"), std::string::npos) << human.out;
}

// Every line is "# HELP name ...", "# TYPE name gauge" or "name value"; values match JSON.
void CheckPrometheus(const std::string& text, const nlohmann::json& stat) {
  const std::regex help(R"(# HELP (lazyblob_store_[a-z_]+) \S.*)");
  const std::regex type(R"(# TYPE (lazyblob_store_[a-z_]+) gauge)");
  const std::regex sample(R"((lazyblob_store_[a-z_]+) ([0-9.eE+-]+))");
  std::istringstream in(text);
  std::map<std::string, double> values;
  std::set<std::string> helped, typed;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, help))
      helped.insert(m[1]);
    else if (std::regex_match(line, m, type))
      typed.insert(m[1]);
    else if (std::regex_match(line, m, sample))
      values[m[1]] = std::stod(m[2]);
    else
      ADD_FAILURE() << "not a Prometheus text line: '" << line << "'";
  }
  for (const char* key : {"blobs", "chunks", "logical_bytes", "unique_bytes", "stored_bytes"}) {
    const std::string name = std::string("lazyblob_store_") + key;
    ASSERT_TRUE(values.count(name)) << name;
    EXPECT_TRUE(helped.count(name) && typed.count(name)) << name;
    EXPECT_EQ(values[name], stat[key].get<double>()) << name;
  }
}

TEST_F(CliTest, StatPrometheusIsTextFormatMatchingJson) {
  ASSERT_EQ(Lb({"import", "--force", File("a", RandomBytes(300000, 7)).string()}).exit_code, 0);
  const nlohmann::json stat = Lb({"stat", "--json"}).Json();
  RunResult prom = Lb({"stat", "--prometheus"});
  ASSERT_EQ(prom.exit_code, 0) << prom.err;
  CheckPrometheus(prom.out, stat);

  const fs::path textfile_dir = dir_ / "textfile";
  fs::create_directories(textfile_dir);
  const fs::path out = textfile_dir / "lazyblob.prom";
  RunResult to_file = Lb({"stat", "--prometheus", "--output", out.string()});
  ASSERT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_TRUE(to_file.out.empty());
  CheckPrometheus(ReadFile(out), stat);
  // Atomic write: only the final file is left, no temp files.
  EXPECT_EQ(std::distance(fs::directory_iterator(textfile_dir), fs::directory_iterator()), 1);

  EXPECT_EQ(Lb({"stat", "--output", out.string()}).exit_code, 2);  // --output needs --prometheus
  EXPECT_EQ(Lb({"stat", "--prometheus", "--json"}).exit_code, 2);  // one format at a time
}

TEST_F(CliTest, HelpOfEveryVerbExitsZeroAndTeachesItsOptions) {
  const std::map<std::string, std::vector<std::string>> verbs = {
      {"init", {"--json"}},
      {"import",
       {"--id", "--chunker", "--avg-chunk", "--min-chunk", "--max-chunk", "--zstd-level", "--json",
        "--no-progress", "Examples", "Exit status"}},
      {"ls", {"--json", "--registry", "Examples"}},
      {"stat", {"--json", "--prometheus", "--output", "Examples"}},
      {"export", {"ID", "FILE", "--json", "--no-progress", "Examples"}},
      {"verify", {"ID", "--json", "--no-progress", "Examples"}},
      {"rm", {"ID", "--json", "Examples"}},
      {"gc", {"--dry-run", "--json", "Examples"}},
      {"rebuild-index", {"--json", "Examples"}},
      {"push",
       {"ID", "--registry", "--auth-file", "--ca-file", "--timeout", "--retries", "--bundle-size",
        "--json", "--no-progress", "Examples", "http://"}},
      {"pull",
       {"ID", "--registry", "--auth-file", "--ca-file", "--timeout", "--retries", "--parallel",
        "--max-request", "--json", "--no-progress", "Examples", "http://"}},
  };
  for (const auto& [verb, words] : verbs) {
    RunResult r = RunProcess({LAZYBLOB_BIN, verb, "--help"}, dir_);
    EXPECT_EQ(r.exit_code, 0) << verb;
    for (const std::string& w : words) {
      EXPECT_NE(r.out.find(w), std::string::npos) << verb << " --help lacks " << w << ":\n"
                                                  << r.out;
    }
  }
  RunResult top = RunProcess({LAZYBLOB_BIN, "--help"}, dir_);
  EXPECT_EQ(top.exit_code, 0);
  for (const auto& [verb, words] : verbs) EXPECT_NE(top.out.find(verb), std::string::npos) << verb;
  EXPECT_NE(top.out.find("LAZYBLOB_STORE"), std::string::npos);
}

TEST_F(CliTest, StoreComesFromEnvironment) {
  ASSERT_EQ(
      Lb({"import", "--force", File("a", RandomBytes(10000, 8)).string(), "--id", "env"}).exit_code,
      0);
  setenv("LAZYBLOB_STORE", store_.c_str(), 1);
  RunResult r = RunProcess({LAZYBLOB_BIN, "ls"}, dir_);
  unsetenv("LAZYBLOB_STORE");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("env"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace lazyblob::testing
