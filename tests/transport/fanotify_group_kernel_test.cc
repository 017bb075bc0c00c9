// FanotifyGroup against this machine's own kernel (>= 6.14), as root, in a private mount
// namespace. Each test skips with one line when the kernel or the user cannot run it.
// What these tests pin down is written up in transport/FANOTIFY_FACTS.md.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "tests/transport/fanotify_kernel_util.h"
#include "transport/fanotify_group.h"
#include "transport/fd_passing.h"

namespace lazyblob {
namespace {

using namespace std::chrono_literals;
using Decision = fanotify_test::EventServer::Decision;
using fanotify_test::EventServer;
using fanotify_test::TempDir;

class FanotifyKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = fanotify_test::KernelSkipReason();
    if (!why.empty()) GTEST_SKIP() << why;
    Status s = fanotify_test::EnterPrivateMountNamespace();
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto g = FanotifyGroup::Open();
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    group_ = std::move(*g);
  }

  // A marked file of `size` pattern bytes whose truth copy is `dir/truth`.
  std::string MarkedFile(const TempDir& dir, std::size_t size) {
    std::string truth = dir / "truth";
    std::string served = dir / "served";
    fanotify_test::WriteFile(truth, fanotify_test::PatternBytes(size, 7));
    EXPECT_TRUE(fanotify_test::MakeSparse(served, size).ok());
    Status s = group_->MarkPreAccess(served);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return served;
  }

  // Waits up to `timeout` for one event on the group.
  std::optional<PendingFanotifyEvent> NextEvent(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{group_->fd(), POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      auto b = group_->Read();
      if (!b.ok() || b->events.empty()) continue;
      EXPECT_EQ(b->events.size(), 1u);
      return std::move(b->events.front());
    }
    return std::nullopt;
  }

  std::unique_ptr<FanotifyGroup> group_;
};

// Reads `len` bytes at `off` of `path` in a child; exit 0 on success, else the errno.
int ChildPread(const std::string& path, off_t off, std::size_t len) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  std::string buf(len, '\0');
  ssize_t n = ::pread(fd.get(), buf.data(), len, off);
  return n < 0 ? errno : 0;
}

TEST_F(FanotifyKernel, ReadOfAMarkedFileWaitsForTheEventAndSeesTheFilledBytes) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 20);
  EventServer server(group_.get());
  server.AddFile(served, dir / "truth");
  server.Start();
  int err = 0;
  std::string got = fanotify_test::ReadFile(served, &err);
  server.Stop();
  EXPECT_EQ(err, 0);
  EXPECT_TRUE(got == fanotify_test::ReadFile(dir / "truth"));
  ASSERT_FALSE(server.served().empty());
  EXPECT_EQ(server.errors(), 0u);
  // Reads at end of file still raise events, with ranges past the end.
  bool past_end = false;
  for (const auto& s : server.served()) past_end |= s.range.end() > (1u << 20);
  EXPECT_TRUE(past_end);
}

TEST_F(FanotifyKernel, EventRangeIsTheRangeOfTheRead) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 20);
  std::atomic<pid_t> reader{0};
  std::thread t([&] {
    fanotify_test::RunChild([&] { return ChildPread(served, 12345, 1000); }, 10s, &reader);
  });
  auto e = NextEvent(5s);
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->event().pre_access());
  // Buffered reads ask for whole pages: [12345, 13345) comes as [12288, 16384).
  EXPECT_EQ(e->event().range, (FanotifyRange{12288, 4096}));
  pid_t pid = e->event().pid;
  EXPECT_TRUE(e->Allow().ok());
  t.join();
  EXPECT_EQ(pid, reader.load());
}

TEST_F(FanotifyKernel, DenyWithEioFailsThatReadOnly) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 20);
  EventServer server(group_.get(), [](const FanotifyEvent& e) {
    return e.range->offset < 65536 ? Decision::kDenyEio : Decision::kFillAndAllow;
  });
  server.AddFile(served, dir / "truth");
  server.Start();
  EXPECT_EQ(fanotify_test::RunChild([&] { return ChildPread(served, 0, 4096); }, 10s), EIO);
  EXPECT_EQ(fanotify_test::RunChild([&] { return ChildPread(served, 512 << 10, 4096); }, 10s), 0);
  server.Stop();
}

TEST_F(FanotifyKernel, DeniedWithOtherErrnosTheReaderSeesThem) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 16);
  for (int err : {EPERM, EAGAIN, EBUSY, ENOSPC}) {
    std::thread t([&] {
      auto e = NextEvent(5s);
      ASSERT_TRUE(e.has_value());
      EXPECT_TRUE(e->Deny(err).ok());
    });
    EXPECT_EQ(fanotify_test::RunChild([&] { return ChildPread(served, 0, 100); }, 10s), err);
    t.join();
  }
}

TEST_F(FanotifyKernel, DenyWithAnErrnoOutsideTheListIsRefusedAndTheEventStaysPending) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 16);
  std::atomic<int> result{-2};
  std::thread t(
      [&] { result = fanotify_test::RunChild([&] { return ChildPread(served, 0, 1); }, 10s); });
  auto e = NextEvent(5s);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(group_->Deny(e->fd(), ENOENT).code(), StatusCode::kInvalidArgument);
  // The owner maps an errno the kernel would refuse to EIO instead of leaving it pending.
  EXPECT_TRUE(e->Deny(ENOENT).ok());
  t.join();
  EXPECT_EQ(result, EIO);
}

TEST_F(FanotifyKernel, AnEventDroppedUnansweredIsDeniedWithEio) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 16);
  std::atomic<int> result{-2};
  std::thread t(
      [&] { result = fanotify_test::RunChild([&] { return ChildPread(served, 0, 1); }, 10s); });
  {
    auto e = NextEvent(5s);
    ASSERT_TRUE(e.has_value());
    EXPECT_FALSE(e->answered());
  }  // dropped here
  t.join();
  EXPECT_EQ(result, EIO);
}

TEST_F(FanotifyKernel, AnsweringTwiceIsAnErrorNotASecondAnswer) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 16);
  std::thread t([&] { fanotify_test::RunChild([&] { return ChildPread(served, 0, 1); }, 10s); });
  auto e = NextEvent(5s);
  ASSERT_TRUE(e.has_value());
  int fd = e->fd();
  EXPECT_TRUE(e->Allow().ok());
  EXPECT_EQ(e->Allow().code(), StatusCode::kInternal);
  EXPECT_EQ(group_->Allow(fd).code(), StatusCode::kNotFound);  // the kernel forgot it too
  t.join();
}

TEST_F(FanotifyKernel, WritingThroughTheEventFdRaisesNoEvent) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 16);
  std::thread t([&] { fanotify_test::RunChild([&] { return ChildPread(served, 0, 1); }, 10s); });
  auto e = NextEvent(5s);
  ASSERT_TRUE(e.has_value());
  // If this pwrite raised an event it would block until answered: do it on a thread and
  // watch the group meanwhile.
  std::atomic<bool> wrote{false};
  std::thread w([&] {
    std::string block(4096, 'x');
    wrote = ::pwrite(e->fd(), block.data(), block.size(), 0) == 4096;
  });
  auto second = NextEvent(500ms);
  EXPECT_FALSE(second.has_value()) << "the event fd's own write raised an event";
  if (second) {
    EXPECT_TRUE(second->Allow().ok());
  }
  w.join();
  EXPECT_TRUE(wrote);
  EXPECT_TRUE(e->Allow().ok());
  t.join();
}

TEST_F(FanotifyKernel, WritingThroughAnotherFdOfTheMarkedFileRaisesAnEvent) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 16);
  std::atomic<bool> wrote{false};
  std::thread w([&] {
    UniqueFd fd(::open(served.c_str(), O_WRONLY | O_CLOEXEC));
    std::string block(4096, 'x');
    wrote = ::pwrite(fd.get(), block.data(), block.size(), 8192) == 4096;
  });
  auto e = NextEvent(5s);
  ASSERT_TRUE(e.has_value()) << "a write through another fd raised no event";
  EXPECT_EQ(e->event().range, (FanotifyRange{8192, 4096}));
  EXPECT_TRUE(e->Allow().ok());
  w.join();
  EXPECT_TRUE(wrote);
}

TEST_F(FanotifyKernel, AFileOpenedBeforeItsMarkRaisesNoEvent) {
  TempDir dir("fan");
  std::string served = dir / "served";
  ASSERT_TRUE(fanotify_test::MakeSparse(served, 1 << 16).ok());
  UniqueFd early(::open(served.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(group_->MarkPreAccess(served).ok());
  std::atomic<bool> done{false};
  std::thread w([&] {
    std::string block(4096, 'x');
    done = ::pwrite(early.get(), block.data(), block.size(), 0) == 4096 &&
           ::pread(early.get(), block.data(), block.size(), 0) == 4096;
  });
  auto e = NextEvent(500ms);
  EXPECT_FALSE(e.has_value()) << "an fd opened before the mark raised an event";
  if (e) {
    EXPECT_TRUE(e->Allow().ok());
  }
  w.join();
  EXPECT_TRUE(done);
  // A fresh open of the same file does raise events.
  std::thread t([&] { fanotify_test::RunChild([&] { return ChildPread(served, 0, 1); }, 10s); });
  auto later = NextEvent(5s);
  EXPECT_TRUE(later.has_value());
  if (later) {
    EXPECT_TRUE(later->Allow().ok());
  }
  t.join();
}

TEST_F(FanotifyKernel, ClosingTheGroupAllowsPendingEventsAndReadersSeeZeros) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 16);
  std::atomic<int> result{-2};
  std::thread t([&] {
    result = fanotify_test::RunChild(
        [&] {
          UniqueFd fd(::open(served.c_str(), O_RDONLY | O_CLOEXEC));
          char buf[100];
          if (::pread(fd.get(), buf, sizeof buf, 0) != 100) return 1;
          for (char c : buf) {
            if (c != 0) return 2;
          }
          return 0;  // read zeros, no error
        },
        10s);
  });
  auto e = NextEvent(5s);
  ASSERT_TRUE(e.has_value());
  // A second, queued but never read event, for good measure.
  std::thread t2(
      [&] { fanotify_test::RunChild([&] { return ChildPread(served, 8192, 1); }, 10s); });
  std::this_thread::sleep_for(100ms);
  // Close the group with one event read but unanswered and one still queued.
  FanotifyEvent taken = std::move(*e).Abandon();
  e.reset();
  group_.reset();
  t.join();
  t2.join();
  EXPECT_EQ(result, 0) << "after the group closed the reader did not see zeros";
}

// A worker that read an event and died without answering: its copy of the event fd closed
// with it, but the event stays on the group's list of read-but-unanswered events (the
// kernel keys answers by fd number only). Nothing re-queues it; the reader keeps waiting.
// Whoever still holds the group can answer it by writing that fd number.
TEST_F(FanotifyKernel, AnEventReadByAWorkerThatDiedStaysPendingAndIsAnswerableByItsFdNumber) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 16);
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  UniqueFd report_r(report[0]), report_w(report[1]);
  pid_t worker = ::fork();
  if (worker == 0) {
    // Worker: holds an inherited copy of the group fd, reads one event, reports its fd
    // number and range, and dies without answering.
    pollfd p{group_->fd(), POLLIN, 0};
    ::poll(&p, 1, 5000);
    alignas(8) char buf[4096];
    ssize_t n = ::read(group_->fd(), buf, sizeof buf);
    if (n < 48) ::_exit(1);
    std::int32_t fd;
    std::memcpy(&fd, buf + 16, sizeof fd);
    if (::write(report_w.get(), &fd, sizeof fd) != sizeof fd) ::_exit(2);
    ::pause();  // killed by the parent below
    ::_exit(3);
  }
  ASSERT_GT(worker, 0);
  std::atomic<int> result{-2};
  std::thread reader(
      [&] { result = fanotify_test::RunChild([&] { return ChildPread(served, 0, 100); }, 20s); });
  std::int32_t dead_fd = -1;
  ASSERT_EQ(::read(report_r.get(), &dead_fd, sizeof dead_fd), static_cast<ssize_t>(sizeof dead_fd));
  ::kill(worker, SIGKILL);
  int st = 0;
  ::waitpid(worker, &st, 0);
  // The reader is still blocked, and the event is not queued again for a new reader.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(result, -2) << "the reader returned after the worker died";
  auto again = NextEvent(300ms);
  EXPECT_FALSE(again.has_value()) << "the dead worker's event was queued again";
  // An answer naming the dead worker's fd number reaches it.
  Status s = group_->Allow(dead_fd);
  EXPECT_TRUE(s.ok()) << s.ToString();
  reader.join();
  EXPECT_EQ(result, 0);
}

// The supervisor holds the group and hands a dup to a worker over a Unix socket; the
// worker serves through the passed fd and the reader gets its bytes.
TEST_F(FanotifyKernel, AWorkerServesThroughAGroupFdPassedOverAUnixSocket) {
  TempDir dir("fan");
  std::string served = MarkedFile(dir, 1 << 16);
  std::string truth = dir / "truth";
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd sup(sp[0]), wrk(sp[1]);
  std::atomic<int> code{-2};
  std::thread worker([&] {
    code = fanotify_test::RunChild(
        [&] {
          // Every inherited fd but the socket (now 3) is closed: the group comes only
          // through it.
          auto got = ReceiveFds(3);
          if (!got.ok() || got->fds.size() != 1 || got->name != "fanotify") return 11;
          auto g = FanotifyGroup::Adopt(std::move(got->fds[0]));
          if (!g.ok()) return 12;
          // Served inline, without a thread: threads started in a child forked from a
          // threaded parent can hang under TSan.
          UniqueFd truth_fd(::open(truth.c_str(), O_RDONLY | O_CLOEXEC));
          int served_events = 0;
          auto deadline = std::chrono::steady_clock::now() + 1500ms;
          while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{(*g)->fd(), POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            auto batch = (*g)->Read();
            if (!batch.ok()) return 14;
            for (PendingFanotifyEvent& e : batch->events) {
              FanotifyRange r = *e.event().range;
              std::string buf(r.count, '\0');
              ssize_t n = ::pread(truth_fd.get(), buf.data(), buf.size(), r.offset);
              if (n < 0 || ::pwrite(e.fd(), buf.data(), n, r.offset) != n) return 15;
              if (!e.Allow().ok()) return 16;
              ++served_events;
            }
          }
          return served_events == 0 ? 13 : 0;
        },
        20s, nullptr, wrk.get());
  });
  int gfd = group_->fd();
  ASSERT_TRUE(SendFds(sup.get(), std::span<const int>(&gfd, 1), "fanotify").ok());
  std::this_thread::sleep_for(200ms);
  int err = 0;
  std::string got = fanotify_test::ReadFile(served, &err);
  EXPECT_EQ(err, 0);
  EXPECT_TRUE(got == fanotify_test::ReadFile(truth));
  worker.join();
  EXPECT_EQ(code, 0);
}

TEST_F(FanotifyKernel, TmpfsTakesNoPreContentMark) {
  TempDir dir("fan");
  ASSERT_EQ(::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=1m"), 0) << std::strerror(errno);
  Status s = FanotifyGroup::ProbeSupport(dir.path());
  ::umount2(dir.path().c_str(), MNT_DETACH);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.ToString();
  EXPECT_NE(s.message().find("does not support pre-content events"), std::string::npos)
      << s.ToString();
}

}  // namespace
}  // namespace lazyblob
