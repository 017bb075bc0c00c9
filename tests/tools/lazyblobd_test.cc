// Daemon tests: the real lazyblobd binary (supervisor + worker) against a KernelSimulator
// and a real chunk store, with readers checking every byte against the source images.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "lazyblob_cli_test_util.h"
#include "store/chunk_store.h"
#include "transport/kernel_simulator.h"

#ifdef LAZYBLOBD_BIN

namespace lazyblob {
namespace {

constexpr std::size_t k64K = 64 * 1024;

class LazyblobdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/lazyblobd-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/cache");
    // Three images built from one pool of 64 KiB segments: they share most chunks.
    std::mt19937 rng(1);
    std::vector<std::vector<char>> pool(16, std::vector<char>(k64K));
    for (auto& seg : pool) {
      for (auto& c : seg) c = static_cast<char>(rng());
    }
    for (int b = 0; b < 3; ++b) {
      const std::string path = dir_ + "/blob" + std::to_string(b) + ".img";
      std::ofstream out(path, std::ios::binary);
      for (int i = 0; i < 48; ++i) out.write(pool[rng() % pool.size()].data(), k64K);
      out.write(pool[b].data(), 1000 + 333 * b);  // unaligned tail
      out.close();
      images_.push_back(path);
      sizes_.push_back(std::filesystem::file_size(path));
    }
    // The import runs in a child process: the store's import threads then never share a
    // process with the simulator, and the test process stays single-purpose.
    const pid_t importer = ::fork();
    ASSERT_GE(importer, 0);
    if (importer == 0) ::_exit(ImportImages() ? 0 : 1);
    int status = 0;
    ASSERT_EQ(::waitpid(importer, &status, 0), importer);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "import failed: " << status;
    KernelSimulatorOptions ko;
    ko.cache_dir = dir_ + "/cache";
    ko.reply_timeout_ms = 60'000;
    auto sim = KernelSimulator::Open(ko);
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
    ASSERT_TRUE(sim_->Listen(dir_ + "/sim.sock").ok());
  }
  bool ImportImages() {
    ChunkStoreOptions so;
    so.path = dir_ + "/store";
    so.writable = true;
    so.create_if_missing = true;
    so.default_chunker.kind = ChunkerKind::kFixed;
    so.default_chunker.avg_bytes = k64K;
    // One import thread: the images are small, and oneTBB's uninstrumented hand-offs
    // between import threads are noise under TSan (this test is about the daemon).
    so.import_threads = 1;
    auto store = ChunkStore::Open(so);
    if (!store.ok()) return false;
    for (int b = 0; b < 3; ++b) {
      ImportOptions io;
      io.id = "blob" + std::to_string(b);
      auto r = (*store)->ImportBlob(images_[b], io);
      if (!r.ok()) {
        std::fprintf(stderr, "import: %s\n", r.status().ToString().c_str());
        return false;
      }
    }
    return true;
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    sim_.reset();
    std::filesystem::remove_all(dir_);
  }
  // `log`: where the daemon's stdout and stderr go ("" = inherited).
  void StartDaemon(std::vector<std::string> extra = {}, const std::string& log = "") {
    std::vector<std::string> args = {
        LAZYBLOBD_BIN, "--store", dir_ + "/store", "--sim-socket", dir_ + "/sim.sock",
        "--threads",   "8"};
    if (log_level_flag_) args.insert(args.end(), {"--log-level", "info"});
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      for (auto& e : env_) ::putenv(e.data());
      if (nofile_soft_ > 0) {
        rlimit lim{};
        ::getrlimit(RLIMIT_NOFILE, &lim);
        lim.rlim_cur = nofile_soft_;
        ::setrlimit(RLIMIT_NOFILE, &lim);
      }
      if (!log.empty()) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 3000 && !sim_->device_attached(); ++i) ::usleep(10'000);
    ASSERT_TRUE(sim_->device_attached()) << (log.empty() ? "" : "daemon log:\n" + ReadLog(log));
  }
  SimMount MountBlob(int b) {
    auto m = sim_->Mount("erofs,d", "blob" + std::to_string(b), images_[b]);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : SimMount{};
  }
  // Reads the whole blob in `piece`-byte reads; returns the number of failed reads.
  int ReadAll(const SimMount& m, std::size_t piece, std::vector<std::string>* errors) {
    std::vector<std::byte> buf(piece);
    int failed = 0;
    for (std::uint64_t off = 0; off < m.size; off += piece) {
      auto r = sim_->Read(m, off, buf);
      if (!r.ok()) {
        ++failed;
        if (errors != nullptr && errors->size() < 5) {
          errors->push_back(std::to_string(off) + ": " + r.status().ToString());
        }
      }
    }
    return failed;
  }
  pid_t WorkerPid() {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) +
                     "/children");
    pid_t child = -1;
    in >> child;
    return child;
  }
  int WaitDaemonExit() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  static std::string ReadLog(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  void ExpectNoViolations() {
    for (const auto& v : sim_->violations()) ADD_FAILURE() << "violation: " << v;
    EXPECT_EQ(sim_->counters().data_mismatches, 0u);
  }

  std::string dir_;
  std::vector<std::string> images_;
  std::vector<std::uint64_t> sizes_;
  std::unique_ptr<KernelSimulator> sim_;
  pid_t pid_ = -1;
  bool log_level_flag_ = true;    // false: the level comes from a --config file
  std::vector<std::string> env_;  // NAME=VALUE added to the daemon's environment
  rlim_t nofile_soft_ = 0;        // > 0: the daemon starts with this RLIMIT_NOFILE soft limit
};

// Polls `path` until it holds `text` after byte `from`; returns where it ends, or npos.
std::size_t WaitForLog(const std::string& path, const std::string& text, std::size_t from = 0) {
  for (int i = 0; i < 3000; ++i, ::usleep(10'000)) {
    std::ifstream in(path);
    const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t at = s.find(text, from);
    if (at != std::string::npos) return at + text.size();
  }
  return std::string::npos;
}

// Issue 14 (5): a SIGHUP reload lived in the worker only, so the next worker (after a crash)
// started with the old settings. The supervisor now keeps the reloaded config.
TEST_F(LazyblobdTest, ReloadedLogLevelSurvivesAWorkerRestart) {
  const std::string conf = dir_ + "/lazyblobd.toml", log = dir_ + "/daemon.log";
  std::ofstream(conf) << "log_level = \"info\"\n";
  log_level_flag_ = false;
  StartDaemon({"--config", conf}, log);
  ASSERT_NE(WaitForLog(log, "serving store"), std::string::npos);
  std::ofstream(conf, std::ios::trunc) << "log_level = \"debug\"\n";
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  ASSERT_NE(WaitForLog(log, "SIGHUP: log level debug"), std::string::npos);
  pid_t worker = -1;
  for (int i = 0; i < 1000 && worker <= 0; ++i, ::usleep(10'000)) worker = WorkerPid();
  ASSERT_GT(worker, 0);
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  const std::size_t restarted = WaitForLog(log, "(restore)");
  ASSERT_NE(restarted, std::string::npos);
  ASSERT_NE(WaitForLog(log, "serving store", restarted), std::string::npos);
  SimMount m = MountBlob(0);
  EXPECT_EQ(ReadAll(m, 65536, nullptr), 0);
  // The new worker logs at debug level: the OPEN it served says so.
  EXPECT_NE(WaitForLog(log, "opened blob 'blob0'", restarted), std::string::npos)
      << ReadLog(log).substr(restarted);
}

// Issue 14 (5): a reloaded write-ahead skipped the 1 GiB limit that start enforces.
TEST_F(LazyblobdTest, ReloadOfAnOversizedWriteAheadIsRefusedAndTheOldValueKept) {
  const std::string conf = dir_ + "/lazyblobd.toml", log = dir_ + "/daemon.log";
  std::ofstream(conf) << "write_ahead = \"1M\"\n";
  StartDaemon({"--config", conf}, log);
  ASSERT_NE(WaitForLog(log, "serving store"), std::string::npos);
  std::ofstream(conf, std::ios::trunc) << "write_ahead = \"100G\"\n";
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  const std::size_t refused = WaitForLog(log, "config not reloaded");
  ASSERT_NE(refused, std::string::npos) << ReadLog(log);
  // A later good reload shows the value in force: still 1 MiB.
  std::ofstream(conf, std::ios::trunc) << "write_ahead = \"1M\"\n";
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  EXPECT_NE(WaitForLog(log, "write-ahead 1048576 bytes", refused), std::string::npos)
      << ReadLog(log);
}

// Issue 14 (6): a READ that kills every worker used to loop forever (restart, restore,
// re-delivery, crash). After --read-crash-limit deaths with it in flight, the next worker
// fails it (EIO for that range only), logs blob and range, and serves everything else.
TEST_F(LazyblobdTest, AReadThatCrashesEveryWorkerIsFailedAndTheRestServed) {
  const std::string log = dir_ + "/daemon.log";
  const std::uint64_t poison = 1u << 20;  // a chunk start in blob0, past its first READs
  env_ = {"LAZYBLOB_FAILPOINT=crash_on_read:blob0:" + std::to_string(poison)};
  StartDaemon({"--write-ahead", "0", "--read-crash-limit", "2", "--read-crash-window", "600"}, log);
  SimMount m = MountBlob(0);
  std::vector<std::byte> buf(4096);
  std::vector<std::uint64_t> failed;
  for (std::uint64_t off = 0; off < m.size; off += buf.size()) {
    if (!sim_->Read(m, off, buf).ok()) failed.push_back(off);
  }
  ASSERT_FALSE(failed.empty()) << ReadLog(log);
  // Only pieces near the poisoned READ fail (its range, and READs overlapping it).
  EXPECT_NE(std::find(failed.begin(), failed.end(), poison / 4096 * 4096), failed.end());
  for (std::uint64_t off : failed) {
    EXPECT_TRUE(off + (1u << 20) > poison && off < poison + (1u << 20)) << off;
  }
  EXPECT_LT(failed.size() * 4096, 2u << 20);
  EXPECT_GE(sim_->counters().restores, 2u);
  // The daemon serves on: every byte of another blob.
  SimMount other = MountBlob(1);
  EXPECT_EQ(ReadAll(other, 65536, nullptr), 0);
  const std::string text = ReadLog(log);
  std::printf("%s", text.c_str());  // the operator's view: blob, range, what was done
  EXPECT_NE(text.find("in flight at 2 worker deaths within 600 s"), std::string::npos) << text;
  EXPECT_NE(text.find("blob 'blob0' ["), std::string::npos) << text;
  EXPECT_NE(text.find("failed without serving it (EIO)"), std::string::npos) << text;
  EXPECT_EQ(sim_->counters().data_mismatches, 0u);
}

// Issue 14 (7): kill -9 of a worker that has taken a READ and not answered it (held by the
// failpoint): the next worker gets the READ again from `restore`, the reader sees no error.
TEST_F(LazyblobdTest, KillNineOfAWorkerHoldingATakenReadRedeliversIt) {
  const std::string log = dir_ + "/daemon.log";
  env_ = {"LAZYBLOB_FAILPOINT=hold_read:1048576"};
  StartDaemon({"--write-ahead", "0"}, log);
  SimMount m = MountBlob(0);
  std::atomic<int> failed{-1};
  std::thread reader([&] {
    std::vector<std::string> errors;
    failed = ReadAll(m, 65536, &errors);
    for (auto& e : errors) ADD_FAILURE() << e;
  });
  const bool held = WaitForLog(log, "failpoint hold_read: holding READ") != std::string::npos;
  pid_t worker = WorkerPid();
  if (held && worker > 0) {
    EXPECT_EQ(sim_->counters().reads_redelivered, 0u);
    ASSERT_EQ(::kill(worker, SIGKILL), 0);
  }
  reader.join();
  ASSERT_TRUE(held) << ReadLog(log);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GE(sim_->counters().reads_redelivered, 1u);
  EXPECT_GE(sim_->counters().restores, 1u);
  EXPECT_EQ(sim_->counters().eios, 0u);
  ExpectNoViolations();
  // The daemon sees it too (the VM scenario daemon-kill-held-read relies on this line).
  EXPECT_NE(ReadLog(log).find("re-delivered after the previous worker died"), std::string::npos)
      << ReadLog(log);
}

// Issue 14 (2): after `restore` the kernel reopens an idle object only at its next READ
// (KERNEL_FACTS (l), now simulated), so the new worker holds no lease on an idle mount and
// `lazyblob rm` went through; the next READ then failed. The supervisor now hands the
// leases of the blobs open at the death to the next worker.
TEST_F(LazyblobdTest, RmOfAMountedBlobIsRefusedAfterAWorkerRestart) {
  const std::string log = dir_ + "/daemon.log";
  StartDaemon({"--write-ahead", "0"}, log);
  SimMount m = MountBlob(0);
  std::vector<std::byte> buf(65536);
  ASSERT_TRUE(sim_->Read(m, 0, buf).ok());
  pid_t worker = -1;
  for (int i = 0; i < 1000 && worker <= 0; ++i, ::usleep(10'000)) worker = WorkerPid();
  ASSERT_GT(worker, 0);
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  const std::size_t restarted = WaitForLog(log, "(restore)");
  ASSERT_NE(restarted, std::string::npos);
  ASSERT_NE(WaitForLog(log, "serving store", restarted), std::string::npos);
  // The real `lazyblob rm`, in its own process (a fork of this threaded test process could
  // not start the store's threads under TSan).
  auto rm = testing::RunProcess({LAZYBLOB_BIN, "--store", dir_ + "/store", "rm", "blob0"}, dir_);
  EXPECT_EQ(rm.exit_code, 2) << "rm of a mounted blob was not refused as busy: " << rm.err << "\n"
                             << ReadLog(log);
  // The mount reads on: its object is reopened at this READ.
  EXPECT_EQ(ReadAll(m, 65536, nullptr), 0);
  EXPECT_EQ(sim_->counters().eios, 0u);
  ExpectNoViolations();
}

// Issue 14 (1): the daemon lifts its fd soft limit to the hard limit, so the kernel's anon
// fds do not run out at the default 1024; the worker inherits it.
TEST_F(LazyblobdTest, TheFdSoftLimitIsRaisedToTheHardLimit) {
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max <= 256) GTEST_SKIP() << "hard limit too low";
  const std::string log = dir_ + "/daemon.log";
  nofile_soft_ = 256;
  StartDaemon({}, log);
  ASSERT_NE(WaitForLog(log, "serving store"), std::string::npos);
  pid_t worker = -1;
  for (int i = 0; i < 1000 && worker <= 0; ++i, ::usleep(10'000)) worker = WorkerPid();
  ASSERT_GT(worker, 0);
  std::ifstream in("/proc/" + std::to_string(worker) + "/limits");
  std::string line, soft, hard;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(std::string("Max open files").size()));
    fields >> soft >> hard;
  }
  EXPECT_EQ(soft, hard);
  EXPECT_EQ(hard, lim.rlim_max == RLIM_INFINITY ? "unlimited" : std::to_string(lim.rlim_max));
  EXPECT_NE(ReadLog(log).find("fd limit (RLIMIT_NOFILE): soft 256 -> " + hard), std::string::npos)
      << ReadLog(log);
}

TEST_F(LazyblobdTest, ConcurrentReadersOfBlobsSharingChunksGetEveryByte) {
  StartDaemon();
  std::vector<SimMount> mounts;
  for (int b = 0; b < 3; ++b) mounts.push_back(MountBlob(b));
  EXPECT_EQ(mounts[1].size, sizes_[1]);
  std::atomic<int> failed{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 6; ++t) {
    readers.emplace_back([&, t] {
      std::vector<std::string> errors;
      failed += ReadAll(mounts[t % 3], t % 2 == 0 ? 4096 : 100'000, &errors);
      for (auto& e : errors) ADD_FAILURE() << e;
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(sim_->counters().eios, 0u);
  ExpectNoViolations();
}

// A worker that does not stop (here: SIGSTOPped, as a hung device read would leave it) is
// killed after --stop-timeout, so a stop always ends.
TEST_F(LazyblobdTest, AWorkerThatDoesNotStopIsKilledAfterTheStopTimeout) {
  const std::string log = dir_ + "/daemon.log";
  StartDaemon({"--stop-timeout", "1"}, log);
  pid_t worker = -1;
  for (int i = 0; i < 1000 && worker <= 0; ++i, ::usleep(10'000)) worker = WorkerPid();
  ASSERT_GT(worker, 0);
  ASSERT_EQ(::kill(worker, SIGSTOP), 0);
  ASSERT_EQ(::kill(pid_, SIGTERM), 0);
  // Bounded: without the escalation the supervisor would wait for the worker forever.
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 6000 && done == 0; ++i) {
    done = ::waitpid(pid_, &status, WNOHANG);
    if (done == 0) ::usleep(10'000);
  }
  ASSERT_EQ(done, pid_) << "lazyblobd still running 60 s after SIGTERM";
  pid_ = -1;
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(::kill(worker, 0), 0);  // gone
  const std::string text = ReadLog(log);
  EXPECT_NE(text.find("did not stop within 1 s; killing it (SIGKILL)"), std::string::npos) << text;
}

TEST_F(LazyblobdTest, JsonLogsAreOneObjectPerLine) {
  const std::string log = dir_ + "/daemon.log";
  StartDaemon({"--log-format", "json"}, log);
  SimMount m = MountBlob(0);
  EXPECT_EQ(ReadAll(m, 65536, nullptr), 0);
  ASSERT_EQ(::kill(pid_, SIGTERM), 0);
  ASSERT_TRUE(WIFEXITED(WaitDaemonExit()));
  std::istringstream in(ReadLog(log));
  int lines = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    ++lines;
    EXPECT_EQ(line.rfind("{\"time\":\"", 0), 0u) << line;
    EXPECT_NE(line.find("\"level\":\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"msg\":\""), std::string::npos) << line;
    EXPECT_EQ(line.back(), '}') << line;
  }
  EXPECT_GT(lines, 2);
}

TEST_F(LazyblobdTest, UnknownBlobFailsItsMountAndTheDaemonServesOn) {
  StartDaemon();
  auto bad = sim_->Mount("erofs,d", "no-such-blob");
  EXPECT_FALSE(bad.ok());
  SimMount m = MountBlob(0);
  EXPECT_EQ(ReadAll(m, 65536, nullptr), 0);
}

TEST_F(LazyblobdTest, KillNineOfTheWorkerMidReadCostsReadersNothing) {
  StartDaemon({"--write-ahead", "0"});  // many READs to interrupt
  std::vector<SimMount> mounts;
  for (int b = 0; b < 3; ++b) mounts.push_back(MountBlob(b));
  pid_t worker = -1;
  for (int i = 0; i < 1000 && worker <= 0; ++i, ::usleep(10'000)) worker = WorkerPid();
  ASSERT_GT(worker, 0);
  std::atomic<int> failed{0};
  std::atomic<int> done{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::vector<std::string> errors;
      failed += ReadAll(mounts[t], 4096, &errors);
      for (auto& e : errors) ADD_FAILURE() << e;
      ++done;
    });
  }
  while (sim_->counters().reads_sent < 10 && done.load() < 3) ::usleep(200);
  ASSERT_LT(done.load(), 3) << "readers finished before the kill";
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GE(sim_->counters().restores, 1u);
  EXPECT_EQ(sim_->counters().eios, 0u);
  EXPECT_NE(WorkerPid(), worker);
  ExpectNoViolations();
}

TEST_F(LazyblobdTest, SigtermUnderLoadAnswersEverythingAndExitsZero) {
  StartDaemon({"--write-ahead", "0"});
  std::vector<SimMount> mounts;
  for (int b = 0; b < 3; ++b) mounts.push_back(MountBlob(b));
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::vector<std::byte> buf(4096);
      for (std::uint64_t off = 0; off < mounts[t].size && !stop; off += 4096) {
        (void)sim_->Read(mounts[t], off, buf);
      }
    });
  }
  while (sim_->counters().reads_sent < 20) ::usleep(200);
  ASSERT_EQ(::kill(pid_, SIGTERM), 0);
  const int status = WaitDaemonExit();
  stop = true;
  for (auto& t : readers) t.join();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // Every READ the daemon took was completed (a late or unknown completion would be a
  // violation); what it had not read yet fails with the withdrawal, as in the kernel.
  EXPECT_EQ(sim_->counters().late_completions, 0u);
  ExpectNoViolations();
}

TEST_F(LazyblobdTest, UnmountDuringInFlightReadsLeavesTheDaemonServing) {
  StartDaemon({"--write-ahead", "0"});
  SimMount m = MountBlob(1);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    (void)ReadAll(m, 4096, nullptr);
    done = true;
  });
  while (sim_->counters().reads_sent < 5 && !done) ::usleep(200);
  ASSERT_TRUE(sim_->Unmount(m).ok());
  reader.join();
  SimMount again = MountBlob(1);
  EXPECT_EQ(ReadAll(again, 65536, nullptr), 0);
  EXPECT_EQ(::waitpid(pid_, nullptr, WNOHANG), 0);  // still running
  ExpectNoViolations();
}

// Issue 15 (6): `lazyblob gc` used to refuse while a daemon served the store. It now runs,
// moving the served chunks to new packs and deleting the old ones, and every read the
// daemon answers meanwhile is still right.
TEST_F(LazyblobdTest, GcRunsWhileTheDaemonServesAndReadsStayCorrect) {
  StartDaemon({"--write-ahead", "0"});
  std::vector<SimMount> mounts;
  for (int b = 0; b < 3; ++b) mounts.push_back(MountBlob(b));
  // Warm: the daemon has the pack open and its index caught up before gc moves things.
  std::vector<std::byte> buf(4096);
  ASSERT_TRUE(sim_->Read(mounts[0], 0, buf).ok());
  const std::string store = dir_ + "/store";
  auto lb = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {LAZYBLOB_BIN, "--store", store});
    return testing::RunProcess(args, dir_);
  };
  auto gc_round = [&](int round) {
    const std::string junk = dir_ + "/junk" + std::to_string(round);
    testing::WriteFile(junk, testing::RandomBytes(300'000, 100 + round));
    const std::string id = "junk" + std::to_string(round);
    auto imported = lb({"import", junk, "--id", id, "--force"});
    EXPECT_EQ(imported.exit_code, 0) << imported.err;
    auto removed = lb({"rm", id});
    EXPECT_EQ(removed.exit_code, 0) << removed.err;
    auto gc = lb({"gc", "--json"});
    EXPECT_EQ(gc.exit_code, 0) << gc.err;
    if (gc.exit_code != 0) return false;
    EXPECT_GE(gc.Json().value("packs_deleted", 0), 1) << gc.out;
    return true;
  };
  ASSERT_TRUE(gc_round(0));  // the daemon's pack is gone now; the rest of blob0 is cold

  std::atomic<bool> done{false};
  std::atomic<int> rounds{1};
  std::thread collector([&] {
    while (!done.load() && gc_round(rounds.load())) ++rounds;
  });
  std::atomic<int> failed{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::vector<std::string> errors;
      failed += ReadAll(mounts[t], 4096, &errors);
      for (auto& e : errors) ADD_FAILURE() << e;
    });
  }
  for (auto& t : readers) t.join();
  done = true;
  collector.join();
  EXPECT_GE(rounds.load(), 2);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(sim_->counters().eios, 0u);
  ExpectNoViolations();
  EXPECT_EQ(::waitpid(pid_, nullptr, WNOHANG), 0);
  auto verify = lb({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST_F(LazyblobdTest, CorruptChunkGivesEioForItsRangeOnly) {
  // Flip one byte in the middle of the pack: one chunk no longer verifies.
  std::string pack;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/store")) {
    if (e.path().extension() == ".lbp") pack = e.path();
  }
  ASSERT_FALSE(pack.empty());
  {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = std::filesystem::file_size(pack);
    f.seekg(static_cast<std::streamoff>(size / 2));
    char c;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.write(&c, 1);
  }
  StartDaemon({"--write-ahead", "0"});
  int failed_total = 0, reads_total = 0;
  for (int b = 0; b < 3; ++b) {
    SimMount m = MountBlob(b);
    failed_total += ReadAll(m, 4096, nullptr);
    reads_total += static_cast<int>((m.size + 4095) / 4096);
  }
  EXPECT_GT(failed_total, 0);                // the corrupt chunk's blocks fail...
  EXPECT_LT(failed_total, reads_total / 4);  // everything else is served
  EXPECT_EQ(::waitpid(pid_, nullptr, WNOHANG), 0);
  ExpectNoViolations();
}

}  // namespace
}  // namespace lazyblob

#endif  // LAZYBLOBD_BIN
