#include "store/trace_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/disk_temp_dir.h"

namespace lazyblob {
namespace {

class TraceDirTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_ = testing::MakeDiskTempDir("lazyblob-trace-dir-");
};

AccessTrace Sample() {
  AccessTrace t;
  t.blob_size = 1 << 20;
  t.blocks = {16, 0, 200, 17};
  return t;
}

TEST_F(TraceDirTest, SavedRecordLoadsBackAndIsRemoved) {
  TraceDir traces(dir_);
  EXPECT_EQ(traces.Load("app").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(traces.Save("app", Sample()).ok());
  Result<AccessTrace> back = traces.Load("app");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->blocks, Sample().blocks);
  EXPECT_EQ(back->blob_size, Sample().blob_size);
  EXPECT_EQ(traces.Load("other").status().code(), StatusCode::kNotFound);
  // A second save replaces the first.
  AccessTrace shorter = Sample();
  shorter.blocks.resize(1);
  ASSERT_TRUE(traces.Save("app", shorter).ok());
  EXPECT_EQ(traces.Load("app")->blocks.size(), 1u);
  ASSERT_TRUE(traces.Remove("app").ok());
  EXPECT_EQ(traces.Load("app").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(traces.Remove("app").code(), StatusCode::kNotFound);
  // No temporary file is left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/traces"))
    files += !e.is_directory();
  EXPECT_EQ(files, 0);
}

TEST_F(TraceDirTest, DamagedOrForeignFileIsCorruptionNotARecord) {
  TraceDir traces(dir_);
  ASSERT_TRUE(traces.Save("app", Sample()).ok());
  {
    std::ofstream f(traces.PathOf("app"), std::ios::binary | std::ios::app);
    f << "junk";
  }
  EXPECT_EQ(traces.Load("app").status().code(), StatusCode::kCorruption);
  // Another blob's record under this blob's name (as a hash collision would leave it).
  ASSERT_TRUE(traces.Save("other", Sample()).ok());
  std::filesystem::copy_file(traces.PathOf("other"), traces.PathOf("app"),
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(traces.Load("app").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(traces.Remove("app").code(), StatusCode::kCorruption);
}

TEST_F(TraceDirTest, RefusesIdsThatAreNoBlobIds) {
  TraceDir traces(dir_);
  EXPECT_EQ(traces.Save("", Sample()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(traces.Save(std::string(256, 'x'), Sample()).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lazyblob
