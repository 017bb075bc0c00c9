#include "transport/fd_passing.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <variant>

#include "core/aligned_buffer.h"
#include "core/anon_fd_writer.h"
#include "tests/transport/sim_fixture.h"

namespace lazyblob {
namespace {

using testing::CountOp;
using testing::SimTest;

TEST(FdPassing, SendsFdsWithNameAndRejectsBadHeaders) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd a(sp[0]), b(sp[1]);
  int pfd[2];
  ASSERT_EQ(::pipe2(pfd, O_CLOEXEC), 0);
  UniqueFd r(pfd[0]), w(pfd[1]);
  int fds[] = {r.get(), w.get()};
  ASSERT_TRUE(SendFds(a.get(), fds, "cachefiles").ok());
  auto got = ReceiveFds(b.get());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->name, "cachefiles");
  ASSERT_EQ(got->fds.size(), 2u);
  ASSERT_EQ(::write(got->fds[1].get(), "z", 1), 1);  // the passed pipe works
  char c = 0;
  ASSERT_EQ(::read(r.get(), &c, 1), 1);
  EXPECT_EQ(c, 'z');

  const char junk[] = "not a header";
  ASSERT_GT(::send(a.get(), junk, sizeof junk, 0), 0);
  EXPECT_EQ(ReceiveFds(b.get()).status().code(), StatusCode::kMalformed);
}

TEST(FdPassing, StoreInSystemdNeedsNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_EQ(StoreFdInSystemd(0).code(), StatusCode::kUnsupported);
}

TEST(FdPassing, StoreInSystemdSendsFdstoreWithName) {
  std::string path = ::testing::TempDir() + "/notify-" + std::to_string(::getpid());
  UniqueFd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ::unlink(path.c_str());
  ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Status st = StoreFdInSystemd(devnull.get());
  ::unsetenv("NOTIFY_SOCKET");
  ASSERT_TRUE(st.ok()) << st.ToString();
  char text[256] = {};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)];
  iovec iov{text, sizeof text - 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ASSERT_GT(::recvmsg(s.get(), &msg, MSG_CMSG_CLOEXEC), 0);
  EXPECT_NE(std::strstr(text, "FDSTORE=1"), nullptr);
  EXPECT_NE(std::strstr(text, "FDNAME=cachefiles"), nullptr);
  int nfds = 0;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_type != SCM_RIGHTS) continue;
    for (std::size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i, ++nfds) {
      int f;
      std::memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof f);
      ::close(f);
    }
  }
  EXPECT_EQ(nfds, 1);
  ::unlink(path.c_str());
}

TEST(FdPassing, TakeFromSystemdFindsTheNamedFd) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // a fresh "service" with two fds from systemd at 3 and 4
    int fd = ::open("/dev/null", O_RDONLY);
    ::dup2(fd, 3);
    ::dup2(fd, 4);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "2", 1);
    ::setenv("LISTEN_FDNAMES", "metrics:cachefiles", 1);
    auto r = TakeFdFromSystemd();
    bool good = r.ok() && r->has_value() && (*r)->get() == 4;
    if (r.ok() && r->has_value()) (void)(*r)->release();
    ::_exit(good ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// The failover path end to end: worker 1 leaves a READ unanswered; the device fd crosses
// to another process (SCM_RIGHTS); that process restores and answers the re-delivered
// READ, which carries the original msg_id; the reader in this process gets its data.
TEST_F(SimTest, DeviceFdHandedToAnotherProcessRestoresPendingReads) {
  const std::uint64_t size = 64 * 1024;
  StartSim(size);
  responder_->answer_reads = false;
  auto m = sim_->Mount("erofs,x", "x", SourceImage(size));
  ASSERT_TRUE(m.ok());
  Status read_status = Internal("not run");
  std::thread reader([&] {
    std::vector<std::byte> buf(4096);
    read_status = sim_->Read(*m, 4096, buf).status();
  });
  ASSERT_TRUE(Eventually([&] { return CountOp(responder_->seen(), CacheOpcode::kRead) == 1; }));
  const std::uint32_t pending_id = responder_->seen()[1].msg_id;
  responder_->Stop();

  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd parent_end(sp[0]), child_end(sp[1]);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Worker 2: no threads; exit code 0 only if the pending READ came back with its id.
    auto got = ReceiveFds(child_end.get());
    if (!got.ok() || got->fds.size() != 1) ::_exit(2);
    auto dev = SimDevice::Adopt(std::move(got->fds[0]));
    if (!dev.ok() || !(*dev)->Restore().ok()) ::_exit(3);
    UniqueFd anon;
    for (int i = 0; i < 3000; ++i) {
      auto msg = (*dev)->Read();
      if (!msg.ok()) ::_exit(4);
      if (!msg->has_value()) {
        ::usleep(10'000);
        continue;
      }
      if (auto* o = std::get_if<OpenMessage>(&**msg)) {
        anon = std::move(o->anon_fd);
        if (!(*dev)->ReplyOpen(o->msg_id, static_cast<std::int64_t>(size)).ok()) ::_exit(5);
      } else if (auto* rd = std::get_if<ReadMessage>(&**msg)) {
        if (rd->msg_id != pending_id || !anon) ::_exit(6);
        AlignedBuffer buf(rd->length);
        for (std::uint64_t k = 0; k < rd->length; ++k) {
          buf.data()[k] = testing::PatternByte(rd->offset + k);
        }
        if (!WriteBlocks(anon.get(), rd->offset, buf.span()).ok()) ::_exit(7);
        if (!(*dev)->CompleteRead(anon.get(), rd->msg_id).ok()) ::_exit(8);
        ::_exit(0);
      }
    }
    ::_exit(9);
  }
  child_end.reset();
  int fds[] = {dev_->fd()};
  ASSERT_TRUE(SendFds(parent_end.get(), fds, kCachefilesFdName).ok());
  responder_.reset();  // worker 1 goes away; the fd in flight keeps the device open
  dev_.reset();
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  reader.join();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(read_status.ok()) << read_status.ToString();
  EXPECT_EQ(sim_->counters().reads_redelivered, 1u);
  EXPECT_EQ(sim_->counters().data_mismatches, 0u);
}

}  // namespace
}  // namespace lazyblob
