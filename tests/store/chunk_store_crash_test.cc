// Crash safety and resource exhaustion: kill -9 a writer at random points, fill the disk.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "store/chunk_store.h"
#include "store_test_util.h"

namespace lazyblob {
namespace {

using testing::RandomBytes;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

constexpr int kInputs = 6;
constexpr char kChildEnv[] = "LAZYBLOB_STORE_CRASH_CHILD";

std::vector<std::byte> InputData(int k) {
  auto v = RandomBytes(400000 + 37 * k, 500 + k, k % 2 == 0);
  auto shared = RandomBytes(200000, 999);  // every input shares a stretch: dedup hits
  v.insert(v.begin(), shared.begin(), shared.end());
  return v;
}

void AppendLog(const std::string& path, const std::string& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  std::string l = line + "\n";
  if (::write(fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) std::abort();
  ::fsync(fd);
  ::close(fd);
}

std::size_t LogLines(const std::string& path) {
  std::ifstream f(path);
  std::size_t n = 0;
  for (std::string line; std::getline(f, line);) ++n;
  return n;
}

// Runs only in the child process started by CrashSafety.KillNineAtRandomPoints.
TEST(CrashSafetyChild, ImportLoop) {
  const char* env = std::getenv(kChildEnv);
  if (env == nullptr) GTEST_SKIP() << "helper for the crash test";
  const std::string dir = env;
  auto store = ChunkStore::Open(testing::WriterOptions(dir + "/store"));
  if (!store.ok()) {
    AppendLog(dir + "/errors", store.status().ToString());
    std::_Exit(3);
  }
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  for (int i = 0;; ++i) {
    const int k = static_cast<int>(rng() % kInputs);
    const std::string id = "p" + std::to_string(getpid()) + "-" + std::to_string(i);
    ImportOptions o;
    o.id = id;
    auto r = (*store)->ImportBlob(dir + "/in" + std::to_string(k), o);
    if (r.ok()) {
      AppendLog(dir + "/log", "+ " + id + " " + std::to_string(k));
    } else {
      AppendLog(dir + "/errors", r.status().ToString());
    }
    if (i % 3 == 2) {
      const std::string victim = "p" + std::to_string(getpid()) + "-" + std::to_string(i - 1);
      AppendLog(dir + "/log", "- " + victim);
      (void)(*store)->Remove(victim);
      (void)(*store)->Gc(false);
    }
  }
}

TEST(CrashSafety, KillNineAtRandomPoints) {
  TempDir tmp;
  for (int k = 0; k < kInputs; ++k) WriteFile(tmp / ("in" + std::to_string(k)), InputData(k));
  std::mt19937 rng(1234);
  std::size_t completed = 0;
  for (int iter = 0; iter < 20; ++iter) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::setenv(kChildEnv, tmp.path().c_str(), 1);
      ::execl("/proc/self/exe", "store_test", "--gtest_filter=CrashSafetyChild.ImportLoop",
              nullptr);
      std::_Exit(127);
    }
    // Even iterations first wait for the child to finish an import (so the test makes
    // progress however loaded the machine is), then kill at a random later point; odd
    // ones kill at a random point that may fall in start-up and recovery.
    if (iter % 2 == 0) {
      const std::size_t before = LogLines(tmp / "log");
      for (int waited = 0; LogLines(tmp / "log") <= before && waited < 60000; waited += 5) {
        ::usleep(5000);
      }
      ::usleep(rng() % 300000);
    } else {
      ::usleep(50000 + rng() % 500000);
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited on its own: " << status;

    auto store = ChunkStore::Open(testing::WriterOptions(tmp / "store"));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto report = (*store)->Verify();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_TRUE(report->clean()) << "iteration " << iter << ": " << report->corrupt.size()
                                 << " corrupt, " << report->missing.size() << " missing";
    std::ifstream log(tmp / "log");
    std::map<std::string, int> done;
    std::set<std::string> removed;
    for (std::string op, id; log >> op >> id;) {
      if (op == "+")
        log >> done[id];
      else
        removed.insert(id);
    }
    completed = done.size();
    for (const auto& [id, k] : done) {
      if (removed.count(id)) continue;
      ASSERT_TRUE((*store)->ExportToPath(id, tmp / "out").ok()) << id;
      ASSERT_EQ(ReadFile(tmp / "out"), InputData(k)) << id;
    }
  }
  EXPECT_GE(completed, 10u) << "errors: " << std::ifstream(tmp / "errors").rdbuf();
}

TEST(CrashSafety, DiskFullIsNoSpaceAndLeavesTheStoreVerifiable) {
  TempDir tmp;
  const std::string mnt = tmp / "mnt";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=6m") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs (not root?)";
  }
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  auto store = ChunkStore::Open(testing::WriterOptions(mnt + "/store"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::vector<std::string> ok_ids;
  Status last;
  for (int i = 0; i < 20; ++i) {
    WriteFile(tmp / "in", RandomBytes(1 << 20, 70 + i));
    ImportOptions o;
    o.id = "full" + std::to_string(i);
    auto r = (*store)->ImportBlob(tmp / "in", o);
    if (!r.ok()) {
      last = r.status();
      break;
    }
    ok_ids.push_back(o.id);
  }
  ASSERT_EQ(last.code(), StatusCode::kNoSpace) << last.ToString();
  ASSERT_FALSE(ok_ids.empty());
  auto report = (*store)->Verify();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->clean());
  auto list = (*store)->ListBlobs();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), ok_ids.size());
  // The store reopens; rm still fits; gc either fits or fails cleanly with kNoSpace
  // (it copies live records before deleting a pack) and the store stays verifiable.
  store->reset();
  auto reopened = ChunkStore::Open(testing::WriterOptions(mnt + "/store"));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  Status rm = (*reopened)->Remove(ok_ids[0]);
  ASSERT_TRUE(rm.ok()) << rm.ToString();
  auto gc = (*reopened)->Gc(false);
  EXPECT_TRUE(gc.ok() || gc.status().code() == StatusCode::kNoSpace)
      << "gc: " << StatusCodeName(gc.status().code()) << " " << gc.status().message();
  auto again = (*reopened)->Verify();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->clean());
  ASSERT_TRUE((*reopened)->ExportToPath(ok_ids.back(), tmp / "out").ok());
  EXPECT_EQ(ReadFile(tmp / "out"), RandomBytes(1 << 20, 70 + int(ok_ids.size()) - 1));
}

}  // namespace
}  // namespace lazyblob
