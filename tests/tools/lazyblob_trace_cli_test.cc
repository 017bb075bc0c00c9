// Issue 16: `lazyblob trace show|rm ID` over the access records lazyblobd keeps in the
// store directory.
#include "store/trace_dir.h"
#include "tests/tools/lazyblob_cli_test_util.h"

namespace lazyblob::testing {
namespace {

class TraceCliTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    const RunResult init = Lb({"init"});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    AccessTrace t;
    t.blob_size = 1 << 20;
    t.blocks = {16, 0, 32};
    ASSERT_TRUE(TraceDir(store_.string()).Save("app", t).ok());
  }
};

TEST_F(TraceCliTest, ShowPrintsTheRecordInFirstAccessOrder) {
  const RunResult json = Lb({"trace", "show", "app", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const nlohmann::json doc = json.Json();
  EXPECT_EQ(doc["id"], "app");
  EXPECT_EQ(doc["blob_size"], 1 << 20);
  EXPECT_EQ(doc["chunks"], 3);
  EXPECT_EQ(doc["offsets"], nlohmann::json::array({65536, 0, 131072}));
  const RunResult text = Lb({"trace", "show", "app"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("3 chunks read at start"), std::string::npos) << text.out;
  EXPECT_LT(text.out.find("offset 65536"), text.out.find("offset 131072")) << text.out;
}

TEST_F(TraceCliTest, RmDeletesTheRecordAndAMissingOneIsAnError) {
  const RunResult rm = Lb({"trace", "rm", "app", "--json"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.Json()["removed"], true);
  for (const char* verb : {"show", "rm"}) {
    const RunResult again = Lb({"trace", verb, "app", "--json"});
    EXPECT_NE(again.exit_code, 0);
    ASSERT_EQ(again.ErrLines().size(), 1u) << again.err;
    EXPECT_NE(again.ErrLines()[0].find("no access record for blob 'app'"), std::string::npos)
        << again.err;
    EXPECT_TRUE(again.Json().contains("error")) << again.out;
  }
}

TEST_F(TraceCliTest, TraceWithoutAVerbIsAUsageError) { EXPECT_EQ(Lb({"trace"}).exit_code, 2); }

}  // namespace
}  // namespace lazyblob::testing
