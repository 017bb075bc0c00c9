// Issue 14 (4): the reader's RocksDB secondary directory must be private to the process.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "store/chunk_store.h"
#include "tests/store/store_test_util.h"

namespace lazyblob {
namespace {

using testing::TempDir;

class SecondaryDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto writer = ChunkStore::Open(testing::WriterOptions(tmp_ / "store"));
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  }
  TempDir tmp_;
};

TEST_F(SecondaryDirTest, AForeignDirectoryWithASymlinkInsideIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make a directory owned by another user";
  const std::string dir = tmp_ / "planted";
  ASSERT_EQ(::mkdir(dir.c_str(), 0777), 0);
  ASSERT_EQ(::symlink("/etc/passwd", (dir + "/LOG").c_str()), 0);
  ASSERT_EQ(::lchown(dir.c_str(), 65534, 65534), 0);  // nobody
  ChunkStoreOptions o = testing::ReaderOptions(tmp_ / "store");
  o.secondary_path = dir;
  auto reader = ChunkStore::Open(o);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kPermissionDenied) << reader.status().ToString();
  // Ours, but with the planted link inside: refused too.
  ASSERT_EQ(::lchown(dir.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0700), 0);
  reader = ChunkStore::Open(o);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("symlink"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat("/etc/passwd", &st), 0);
  EXPECT_GT(st.st_size, 0) << "the planted link was followed";
}

TEST_F(SecondaryDirTest, AnOpenDirectoryIsRefusedAndAMissingOneIsMadePrivate) {
  const std::string open_dir = tmp_ / "open";
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0755), 0);
  ChunkStoreOptions o = testing::ReaderOptions(tmp_ / "store");
  o.secondary_path = open_dir;
  EXPECT_EQ(ChunkStore::Open(o).status().code(), StatusCode::kPermissionDenied);
  o.secondary_path = tmp_ / "fresh";
  ASSERT_TRUE(ChunkStore::Open(o).ok());
  struct stat st {};
  ASSERT_EQ(::stat(o.secondary_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(SecondaryDirTest, DefaultDirIsFreshPrivateAndLeftoversOfDeadReadersGo) {
  const std::string base = tmp_ / "tmpdir";
  ASSERT_EQ(::mkdir(base.c_str(), 0700), 0);
  ::setenv("TMPDIR", base.c_str(), 1);
  // A reader killed with -9 leaves its directory behind.
#ifdef __SANITIZE_THREAD__
  // TSan cannot start threads (RocksDB's) in a child forked from a threaded process, so
  // under TSan the child only dies and the directory it would have left is made for it.
  const pid_t child = ::fork();
  if (child == 0) std::_Exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  const std::string left = base + "/lazyblob-secondary-" + std::to_string(child) + "-Xk3q9Z";
  ASSERT_EQ(::mkdir(left.c_str(), 0700), 0);
  std::ofstream(left + "/LOG") << "left by a dead reader\n";
#else
  const pid_t child = ::fork();
  if (child == 0) {
    auto r = ChunkStore::Open(testing::ReaderOptions(tmp_ / "store"));
    ::kill(::getpid(), SIGKILL);
    std::_Exit(r.ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
#endif
  auto count = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(base)) n += e.is_directory();
    return n;
  };
  ASSERT_EQ(count(), 1) << "the killed reader left its directory";
  {
    auto reader = ChunkStore::Open(testing::ReaderOptions(tmp_ / "store"));
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ(count(), 1) << "the dead reader's directory was not removed";
    for (const auto& e : std::filesystem::directory_iterator(base)) {
      EXPECT_EQ(e.status().permissions(), std::filesystem::perms::owner_all);
    }
  }
  EXPECT_EQ(count(), 0);
  ::unsetenv("TMPDIR");
}

}  // namespace
}  // namespace lazyblob
