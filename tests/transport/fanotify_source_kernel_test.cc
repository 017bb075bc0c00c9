// FanotifySource with the PreContentEngine on this machine's kernel (>= 6.14, root): the
// real group, a real sparse file, reader processes that block in the kernel, and worker
// processes that die at the worst moments. Skips with one line when the kernel or the
// user cannot run it.
#include "transport/fanotify_source.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/pre_content_engine.h"
#include "tests/core/engine_test_doubles.h"
#include "tests/transport/fanotify_kernel_util.h"

namespace lazyblob {
namespace {

using namespace std::chrono_literals;
using fanotify_test::TempDir;

constexpr std::uint32_t k64K = 64 * 1024;

// Reads [off, off + len) of `path` in this (child) process; 0 when the bytes equal
// `want`'s, 100 when they differ, else the errno of the failed call.
int ReadEquals(const std::string& path, off_t off, std::size_t len, const std::string& want) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  std::string got(len, '\0');
  std::size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd.get(), got.data() + done, len - done, off + static_cast<off_t>(done));
    if (n < 0) return errno;
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return got.compare(0, done, want, static_cast<std::size_t>(off), done) == 0 ? 0 : 100;
}

class FanotifySourceKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = fanotify_test::KernelSkipReason();
    if (!why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(fanotify_test::EnterPrivateMountNamespace().ok());
    auto g = FanotifyGroup::Open();
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    group_ = std::move(*g);
    auto j = AccessJournal::Create(64);
    ASSERT_TRUE(j.ok());
    journal_ = std::move(*j);
    // The blob: 8 chunks of 64 KiB; its sparse file, and a fill fd opened before the mark.
    for (int i = 0; i < 8; ++i) {
      keys_.push_back(chunks_.AddChunk(testing::PatternBytes(k64K, static_cast<std::uint32_t>(i))));
    }
    chunks_.AddBlob("blob", keys_);
    const testing::Bytes bytes = chunks_.BlobBytes("blob");
    truth_.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    served_ = dir_ / "served";
    ASSERT_TRUE(fanotify_test::MakeSparse(served_, truth_.size()).ok());
    fill_fd_ = UniqueFd(::open(served_.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(group_->MarkPreAccess(served_).ok());
  }

  // A source over a dup of the group, as a worker gets it.
  std::unique_ptr<FanotifySource> NewSource() {
    auto g = FanotifyGroup::Adopt(UniqueFd(::fcntl(group_->fd(), F_DUPFD_CLOEXEC, 3)));
    EXPECT_TRUE(g.ok());
    auto s = FanotifySource::Create(std::move(*g), journal_.get(), 1024);
    EXPECT_TRUE(s.ok());
    return std::move(*s);
  }
  // An engine serving the blob through `source`, its file registered (not started).
  std::unique_ptr<PreContentEngine> NewEngine(PreContentSource* source) {
    PreContentEngineOptions o;
    o.engine.worker_threads = 2;
    o.engine.write_ahead_bytes = 0;
    auto e = PreContentEngine::Create(o, source, &chunks_, &stats_);
    EXPECT_TRUE(e.ok());
    auto blob = chunks_.OpenBlob("blob");
    auto file = (*e)->AddFile(std::move(*blob), UniqueFd(::dup(fill_fd_.get())));
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    file_ = *file;
    return std::move(*e);
  }
  // Runs a reader of [off, off + len) in a child on a thread; its result lands in `result`.
  std::thread Reader(off_t off, std::size_t len, std::atomic<int>* result) {
    result->store(-2);
    return std::thread([this, off, len, result] {
      *result = fanotify_test::RunChild([&] { return ReadEquals(served_, off, len, truth_); }, 30s);
    });
  }
  // Forks a worker that runs `body` (which must end by pausing) and waits for its report.
  pid_t ForkWorker(const std::function<void(int report_fd)>& body) {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(p[0]);
      body(p[1]);
      ::_exit(3);
    }
    ::close(p[1]);
    char c = 0;
    EXPECT_EQ(::read(p[0], &c, 1), 1) << "the worker did not report";
    ::close(p[0]);
    return pid;
  }
  static void Kill(pid_t pid) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  static void WaitForEvent(int group_fd) {
    pollfd p{group_fd, POLLIN, 0};
    ::poll(&p, 1, 10'000);
  }

  TempDir dir_{"fansrc"};
  std::unique_ptr<FanotifyGroup> group_;
  std::unique_ptr<AccessJournal> journal_;
  testing::FakeChunkSource chunks_;
  testing::CountingStats stats_;
  std::vector<ChunkKey> keys_;
  std::string truth_, served_;
  UniqueFd fill_fd_;
  std::shared_ptr<ServedFile> file_;
};

TEST_F(FanotifySourceKernel, TheEngineServesReadersThroughTheRealGroup) {
  auto source = NewSource();
  auto engine = NewEngine(source.get());
  ASSERT_TRUE(engine->Mark(*file_).ok());
  ASSERT_TRUE(engine->Start().ok());
  std::atomic<int> a{-2}, b{-2};
  std::thread ra = Reader(0, 3 * k64K + 100, &a);
  std::thread rb = Reader(5 * k64K - 4096, 2 * k64K, &b);
  ra.join();
  rb.join();
  EXPECT_EQ(a.load(), 0);
  EXPECT_EQ(b.load(), 0);
  EXPECT_GT(engine->counters().events, 0u);
  EXPECT_EQ(journal_->free_slots(), 64u);  // every record cleared
}

TEST_F(FanotifySourceKernel, ACorruptChunkFailsReadsOfItsRangeWithEioAndNoOthers) {
  auto source = NewSource();
  auto engine = NewEngine(source.get());
  ASSERT_TRUE(engine->Mark(*file_).ok());
  ASSERT_TRUE(engine->Start().ok());
  chunks_.Corrupt(keys_[2]);
  std::atomic<int> bad{-2}, good{-2};
  std::thread rbad = Reader(2 * k64K + 4096, 4096, &bad);
  rbad.join();
  std::thread rgood = Reader(3 * k64K, 4096, &good);
  rgood.join();
  EXPECT_EQ(bad.load(), EIO);
  EXPECT_EQ(good.load(), 0);
}

TEST_F(FanotifySourceKernel, TheNextWorkerFillsAndAnswersTheRecordedEventOfADeadOne) {
  pid_t worker = -1;
  std::atomic<int> result{-2};
  std::thread reader = Reader(3 * k64K, 8192, &result);
  worker = ForkWorker([&](int report) {
    auto source = NewSource();
    WaitForEvent(source->poll_fd());
    auto batch = source->Read(16);
    if (!batch.ok() || batch->events.size() != 1) ::_exit(1);
    // Recorded, then the worker dies holding it: no answer, and its fd closes with it.
    (void)!::write(report, "x", 1);
    ::pause();
  });
  Kill(worker);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(result.load(), -2) << "the reader returned while its event was an orphan";
  auto source = NewSource();
  auto engine = NewEngine(source.get());
  ASSERT_TRUE(engine->Mark(*file_).ok());
  ASSERT_TRUE(engine->Start().ok());  // answers the orphan before reading anything
  reader.join();
  EXPECT_EQ(result.load(), 0);
  EXPECT_EQ(engine->counters().orphans, 1u);
  EXPECT_EQ(journal_->free_slots(), 64u);
}

TEST_F(FanotifySourceKernel, AWorkerThatDiedBeforeRecordingIsCoveredByCompletingTheFile) {
  std::atomic<int> result{-2};
  std::thread reader = Reader(6 * k64K, 4096, &result);
  const pid_t worker = ForkWorker([&](int report) {
    // Dies between read() and the record: the event is pending and nobody knows its number.
    journal_->BeginRead(1024);
    WaitForEvent(group_->fd());
    alignas(8) char buf[4096];
    if (::read(group_->fd(), buf, sizeof buf) < 48) ::_exit(1);
    (void)!::write(report, "x", 1);
    ::pause();
  });
  Kill(worker);
  auto source = NewSource();
  auto engine = NewEngine(source.get());
  ASSERT_TRUE(engine->Mark(*file_).ok());
  ASSERT_TRUE(engine->Start().ok());
  reader.join();
  EXPECT_EQ(result.load(), 0);
  EXPECT_TRUE(file_->complete());
  EXPECT_FALSE(journal_->ReadInProgress());
}

}  // namespace
}  // namespace lazyblob
