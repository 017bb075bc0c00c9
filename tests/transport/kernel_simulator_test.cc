#include "transport/kernel_simulator.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <random>
#include <thread>

#include "core/aligned_buffer.h"
#include "core/anon_fd_writer.h"
#include "tests/transport/sim_fixture.h"

namespace lazyblob {
namespace {

using testing::CountOp;
using testing::PatternByte;
using testing::SeenMessage;
using testing::SimTest;

constexpr std::uint64_t kKiB = 1024;

TEST_F(SimTest, MountSendsOpenWithKeysAndObjectIdsStartAtOne) {
  StartSim(64 * kKiB);
  auto a = sim_->Mount("erofs,domain", "blob-a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->size, 64 * kKiB);
  auto b = sim_->Mount("erofs,domain", "blob-b");
  ASSERT_TRUE(b.ok());
  auto seen = responder_->seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].msg_id, 0u);
  EXPECT_EQ(seen[0].object_id, 1u);
  EXPECT_EQ(seen[0].volume_key, "erofs,domain");
  EXPECT_EQ(seen[0].cookie_key, "blob-a");
  EXPECT_EQ(seen[1].msg_id, 1u);
  EXPECT_EQ(seen[1].object_id, 2u);
  // The same blob again shares the object: no second OPEN.
  auto a2 = sim_->Mount("erofs,domain", "blob-a");
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(responder_->seen().size(), 2u);
}

TEST_F(SimTest, SequentialReadFollowsReadaheadAndMatchesSource) {
  const std::uint64_t size = 1024 * kKiB + 1000;  // last block partial: padded by the writer
  StartSim(size);
  auto m = sim_->Mount("erofs,fsid", "fsid", SourceImage(size));
  ASSERT_TRUE(m.ok());
  std::vector<std::byte> buf(4096);
  for (std::uint64_t off = 0; off < size; off += buf.size()) {
    auto n = sim_->Read(*m, off, buf);
    ASSERT_TRUE(n.ok()) << off << ": " << n.status().ToString();
    ASSERT_EQ(*n, std::min<std::uint64_t>(buf.size(), size - off));
  }
  std::vector<std::uint64_t> lengths;
  for (auto& s : responder_->seen()) {
    if (s.op == CacheOpcode::kRead) lengths.push_back(s.length);
  }
  ASSERT_GE(lengths.size(), 6u);
  EXPECT_EQ(lengths[0], 4 * kKiB);
  EXPECT_EQ(lengths[1], 16 * kKiB);
  EXPECT_EQ(lengths[2], 32 * kKiB);
  EXPECT_EQ(lengths[3], 64 * kKiB);
  EXPECT_EQ(lengths[4], 128 * kKiB);
  EXPECT_EQ(lengths[5], 128 * kKiB);
  auto c = sim_->counters();
  EXPECT_EQ(c.read_bytes_requested, AlignUp(size));
  EXPECT_EQ(c.data_mismatches, 0u);
  EXPECT_EQ(c.eios, 0u);
  EXPECT_TRUE(sim_->violations().empty());
  // Fully cached: a remount sends OPEN and no READs.
  ASSERT_TRUE(sim_->Unmount(*m).ok());
  ASSERT_TRUE(Eventually([&] { return CountOp(responder_->seen(), CacheOpcode::kClose) == 1; }));
  auto m2 = sim_->Mount("erofs,fsid", "fsid", SourceImage(size));
  ASSERT_TRUE(m2.ok());
  std::vector<std::byte> all(size);
  ASSERT_TRUE(sim_->Read(*m2, 0, all).ok());
  EXPECT_EQ(sim_->counters().reads_sent, c.reads_sent);
}

TEST_F(SimTest, LargerReadaheadMakesLargerReads) {
  KernelSimulatorOptions opt;
  opt.max_readahead_bytes = 1024 * kKiB;
  StartSim(8 * 1024 * kKiB, opt);
  auto m = sim_->Mount("erofs,x", "x");
  ASSERT_TRUE(m.ok());
  std::vector<std::byte> buf(64 * kKiB);
  for (std::uint64_t off = 0; off < m->size; off += buf.size()) {
    ASSERT_TRUE(sim_->Read(*m, off, buf).ok());
  }
  std::uint64_t biggest = 0;
  for (auto& s : responder_->seen()) biggest = std::max(biggest, s.length);
  EXPECT_EQ(biggest, 1024 * kKiB);
}

TEST_F(SimTest, RandomReadsFromManyThreadsOnSeveralBlobs) {
  const std::uint64_t size = 2 * 1024 * kKiB;
  StartSim(size);
  std::string src = SourceImage(size);
  SimMount mounts[2];
  for (int i = 0; i < 2; ++i) {
    auto m = sim_->Mount("erofs,dom", "blob" + std::to_string(i), src);
    ASSERT_TRUE(m.ok());
    mounts[i] = *m;
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<std::byte> buf(10000);
      for (int i = 0; i < 200; ++i) {
        const SimMount& m = mounts[rng() % 2];
        std::uint64_t off = rng() % size;
        auto n = sim_->Read(m, off, buf);
        if (!n.ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto c = sim_->counters();
  EXPECT_EQ(c.data_mismatches, 0u);
  // One READ per range: never more bytes asked than the blobs hold.
  EXPECT_LE(c.read_bytes_requested, 2 * size);
  EXPECT_TRUE(sim_->violations().empty());
}

TEST_F(SimTest, MsgIdsAreCyclicAndNotReusedAtOnce) {
  KernelSimulatorOptions opt;
  opt.max_msg_id = 3;
  StartSim(1024 * kKiB, opt);
  auto m = sim_->Mount("erofs,x", "x");  // msg 0
  ASSERT_TRUE(m.ok());
  std::vector<std::byte> buf(4096);
  for (int i = 0; i < 6; ++i) {  // random jumps: one 4 KiB READ each
    ASSERT_TRUE(sim_->Read(*m, (i * 7 + 3) * 64 * kKiB % m->size, buf).ok());
  }
  std::vector<std::uint32_t> ids;
  for (auto& s : responder_->seen()) ids.push_back(s.msg_id);
  EXPECT_EQ(ids, (std::vector<std::uint32_t>{0, 1, 2, 3, 0, 1, 2}));
}

TEST_F(SimTest, AnonFdRefusesUnalignedWritesWithKernelErrnos) {
  StartSim(64 * kKiB);
  responder_->Stop();  // answer by hand
  std::thread mounter([&] { (void)sim_->Mount("erofs,x", "x"); });
  std::optional<CacheMessage> msg;
  ASSERT_TRUE(Eventually([&] {
    auto r = dev_->Read();
    if (r.ok() && r->has_value()) msg = std::move(*r);
    return msg.has_value();
  }));
  auto& open = std::get<OpenMessage>(*msg);
  AlignedBuffer b(8192);
  Status s = WriteBlocks(open.anon_fd.get(), 100, b.span());
  EXPECT_EQ(s.errno_value(), ENOBUFS);
  s = WriteBlocks(open.anon_fd.get(), 0, b.span().subspan(8, 4096));
  EXPECT_EQ(s.errno_value(), EINVAL);
  // The anon fd is a real O_DIRECT file: the filesystem refuses an unaligned buffer too.
  EXPECT_LT(::pwrite(open.anon_fd.get(), b.data() + 8, 4096, 0), 0);
  EXPECT_EQ(errno, EINVAL);
  ASSERT_TRUE(dev_->ReplyOpen(open.msg_id, 64 * kKiB).ok());
  mounter.join();
  // After the copen the cache file has the size rounded up to 4 KiB (SEEK_END).
  EXPECT_EQ(::lseek(open.anon_fd.get(), 0, SEEK_END), static_cast<off_t>(64 * kKiB));
}

TEST(SimCacheDir, TmpfsIsRefusedAsCachefilesRefusesIt) {
  // /dev/shm is a tmpfs on every systemd machine; where it is not, there is nothing to test.
  struct statfs fs;
  if (::statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC) {
    GTEST_SKIP() << "/dev/shm is not a tmpfs here";
  }
  std::string dir = "/dev/shm/lazyblob-sim-tmpfs-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  KernelSimulatorOptions opt;
  opt.cache_dir = dir;
  auto sim = KernelSimulator::Open(opt);
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(sim.ok());
  EXPECT_EQ(sim.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(sim.status().errno_value(), EOPNOTSUPP);
  EXPECT_NE(sim.status().message().find("tmpfs"), std::string::npos) << sim.status().ToString();
}

TEST_F(SimTest, HoleLeftAfterCompletionGivesEio) {
  StartSim(64 * kKiB);
  responder_->leave_hole = true;
  auto m = sim_->Mount("erofs,x", "x");
  ASSERT_TRUE(m.ok());
  std::vector<std::byte> buf(4096);
  auto n = sim_->Read(*m, 0, buf);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().errno_value(), EIO);
  EXPECT_EQ(sim_->counters().eios, 1u);
}

TEST_F(SimTest, CloseDuringInFlightReadFailsTheReaderWithEio) {
  StartSim(64 * kKiB);
  responder_->answer_reads = false;
  auto m = sim_->Mount("erofs,x", "x");
  ASSERT_TRUE(m.ok());
  Status read_status;
  std::thread reader([&] {
    std::vector<std::byte> buf(4096);
    read_status = sim_->Read(*m, 0, buf).status();
  });
  ASSERT_TRUE(Eventually([&] { return CountOp(responder_->seen(), CacheOpcode::kRead) == 1; }));
  ASSERT_TRUE(sim_->Unmount(*m).ok());
  reader.join();
  EXPECT_EQ(read_status.errno_value(), EIO);
  ASSERT_TRUE(Eventually([&] { return CountOp(responder_->seen(), CacheOpcode::kClose) == 1; }));
  // The daemon completing it afterwards is the kernel's EINVAL race, not a violation.
  std::uint32_t id = responder_->seen()[1].msg_id;
  ASSERT_TRUE(dev_->CompleteRead(-1, id).ok());
  ASSERT_TRUE(Eventually([&] { return sim_->counters().late_completions == 1; }));
  EXPECT_TRUE(sim_->violations().empty());
}

TEST_F(SimTest, FailedOpenGivesEioAndMalformedCopenGivesEnobufs) {
  StartSim(64 * kKiB);
  responder_->open_reply_override = -ENOENT;
  auto m = sim_->Mount("erofs,x", "x");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().errno_value(), EIO);
  EXPECT_TRUE(sim_->violations().empty());

  responder_->Stop();
  std::thread answer([&] {
    for (int i = 0; i < 3000; ++i) {
      auto r = dev_->Read();
      if (r.ok() && r->has_value()) {
        auto& o = std::get<OpenMessage>(**r);
        std::string bad = "copen " + std::to_string(o.msg_id) + ",12abc";
        (void)::send(dev_->fd(), bad.data(), bad.size(), MSG_NOSIGNAL);
        return;
      }
      ::usleep(10'000);
    }
  });
  auto m2 = sim_->Mount("erofs,x", "y");
  answer.join();
  ASSERT_FALSE(m2.ok());
  EXPECT_EQ(m2.status().errno_value(), ENOBUFS);
  EXPECT_EQ(sim_->counters().protocol_violations, 1u);
}

TEST_F(SimTest, UnknownAndDuplicateCompletionsAreViolations) {
  StartSim(64 * kKiB);
  auto m = sim_->Mount("erofs,x", "x");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(dev_->CompleteRead(-1, 999).ok());
  ASSERT_TRUE(dev_->ReplyOpen(0, 4096).ok());  // msg 0 was answered already
  ASSERT_TRUE(Eventually([&] { return sim_->counters().protocol_violations == 2; }));
  EXPECT_EQ(sim_->violations().size(), 2u);
}

TEST_F(SimTest, RestoreResendsOpenThenPendingReadsWithOriginalMsgIds) {
  StartSim(64 * kKiB);
  responder_->answer_reads = false;
  // The "supervisor" keeps a copy of the device fd, so the cache survives the worker.
  UniqueFd kept(::fcntl(dev_->fd(), F_DUPFD_CLOEXEC, 0));
  auto m = sim_->Mount("erofs,x", "x", SourceImage(64 * kKiB));
  ASSERT_TRUE(m.ok());
  Status read_status = Internal("not run");
  std::thread reader([&] {
    std::vector<std::byte> buf(4096);
    read_status = sim_->Read(*m, 8192, buf).status();
  });
  ASSERT_TRUE(Eventually([&] { return CountOp(responder_->seen(), CacheOpcode::kRead) == 1; }));
  SeenMessage old_open = responder_->seen()[0], old_read = responder_->seen()[1];
  responder_.reset();  // the worker dies: its anon fds and its device fd close
  dev_.reset();
  EXPECT_TRUE(sim_->device_attached());

  auto dev2 = SimDevice::Adopt(std::move(kept));
  ASSERT_TRUE(dev2.ok());
  ASSERT_TRUE((*dev2)->Restore().ok());
  testing::TestResponder worker2(dev2->get(), 64 * kKiB);
  worker2.Start();
  reader.join();
  EXPECT_TRUE(read_status.ok()) << read_status.ToString();
  auto seen = worker2.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].op, CacheOpcode::kOpen);
  EXPECT_EQ(seen[0].cookie_key, "x");
  EXPECT_NE(seen[0].object_id, old_open.object_id);
  EXPECT_NE(seen[0].msg_id, old_open.msg_id);
  EXPECT_EQ(seen[1].op, CacheOpcode::kRead);
  EXPECT_EQ(seen[1].msg_id, old_read.msg_id);
  EXPECT_EQ(seen[1].object_id, seen[0].object_id);
  EXPECT_EQ(seen[1].offset, old_read.offset);
  auto c = sim_->counters();
  EXPECT_EQ(c.restores, 1u);
  EXPECT_EQ(c.reads_redelivered, 1u);
  EXPECT_TRUE(sim_->violations().empty());
  worker2.Stop();
}

// KERNEL_FACTS (l), 6.12: after `restore` an object with no READ pending is not reopened;
// its next READ first sends a new OPEN, then the READ. (The simulator used to reopen every
// object at once, which hid that an idle mount holds nothing open in the new worker.)
TEST_F(SimTest, RestoreLeavesAnIdleObjectClosedUntilItsNextRead) {
  StartSim(64 * kKiB);
  UniqueFd kept(::fcntl(dev_->fd(), F_DUPFD_CLOEXEC, 0));
  auto m = sim_->Mount("erofs,x", "x", SourceImage(64 * kKiB));
  ASSERT_TRUE(m.ok());
  std::vector<std::byte> buf(4096);
  ASSERT_TRUE(sim_->Read(*m, 0, buf).ok());  // answered: nothing pending
  const std::uint32_t old_object = responder_->seen()[0].object_id;
  responder_.reset();
  dev_.reset();
  auto dev2 = SimDevice::Adopt(std::move(kept));
  ASSERT_TRUE(dev2.ok());
  ASSERT_TRUE((*dev2)->Restore().ok());
  testing::TestResponder worker2(dev2->get(), 64 * kKiB);
  worker2.Start();
  ASSERT_TRUE(Eventually([&] { return sim_->counters().restores == 1; }));
  ::usleep(100'000);
  EXPECT_EQ(worker2.seen().size(), 0u) << "an idle object was reopened at restore";
  EXPECT_EQ(sim_->counters().opens_sent, 1u);
  ASSERT_TRUE(sim_->Read(*m, 32 * kKiB, buf).ok());
  auto seen = worker2.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].op, CacheOpcode::kOpen);
  EXPECT_NE(seen[0].object_id, old_object);
  EXPECT_EQ(seen[1].op, CacheOpcode::kRead);
  EXPECT_EQ(seen[1].object_id, seen[0].object_id);
  auto c = sim_->counters();
  EXPECT_EQ(c.opens_sent, 2u);
  EXPECT_EQ(c.reads_redelivered, 0u);  // a new READ, not a re-delivered one
  EXPECT_TRUE(sim_->violations().empty());
  worker2.Stop();
}

TEST_F(SimTest, ClosingEveryDeviceFdWithdrawsTheCache) {
  StartSim(64 * kKiB);
  responder_->answer_reads = false;
  auto m = sim_->Mount("erofs,x", "x");
  ASSERT_TRUE(m.ok());
  Status read_status;
  std::thread reader([&] {
    std::vector<std::byte> buf(4096);
    read_status = sim_->Read(*m, 0, buf).status();
  });
  ASSERT_TRUE(Eventually([&] { return CountOp(responder_->seen(), CacheOpcode::kRead) == 1; }));
  responder_.reset();
  dev_.reset();
  reader.join();
  EXPECT_EQ(read_status.errno_value(), EIO);
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(sim_->Read(*m, 0, buf).status().errno_value(), ENOBUFS);
  EXPECT_FALSE(sim_->device_attached());
  EXPECT_EQ(sim_->counters().withdrawals, 1u);
  // A new device starts ids over.
  auto fd = sim_->OpenDevice();
  ASSERT_TRUE(fd.ok());
  auto dev = SimDevice::Adopt(std::move(*fd));
  ASSERT_TRUE(dev.ok());
  testing::TestResponder r(dev->get(), 4096);
  r.Start();
  ASSERT_TRUE(sim_->Mount("erofs,x", "x").ok());
  EXPECT_EQ(r.seen()[0].msg_id, 0u);
  EXPECT_EQ(r.seen()[0].object_id, 1u);
  r.Stop();
}

TEST_F(SimTest, OnlyOneDeviceAtATimeOverTheListeningSocket) {
  KernelSimulatorOptions opt;
  opt.cache_dir = dir_;
  auto sim = KernelSimulator::Open(opt);
  ASSERT_TRUE(sim.ok());
  sim_ = std::move(*sim);
  std::string path = dir_ + "/dev.sock";
  ASSERT_TRUE(sim_->Listen(path).ok());
  auto a = SimDevice::Connect(path);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = SimDevice::Connect(path);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kBusy);
  EXPECT_EQ(sim_->OpenDevice().status().code(), StatusCode::kBusy);
  testing::TestResponder r(a->get(), 4096);
  r.Start();
  EXPECT_TRUE(sim_->Mount("erofs,x", "x").ok());
  r.Stop();
}

}  // namespace
}  // namespace lazyblob
