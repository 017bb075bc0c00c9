// kill -9 of the fanotify front end's worker during 1,000 concurrent reads by 50 reader
// processes over three mounted images: every byte every reader got is checked against the
// source files. No reader may see an error or a zero-filled range (what the kernel gives a
// reader whose event is allowed unfilled, e.g. when the group closes), and none may hang.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mount.h>
#include <unistd.h>

#include <random>
#include <regex>

#include "tests/native/fanotify_daemon_util.h"

namespace lazyblob {
namespace {

using fanotify_test::FanotifyDaemon;
using fanotify_test::MakeErofs;
using fanotify_test::TempDir;

constexpr int kReaders = 50;
constexpr int kReadsPerReader = 20;  // 1,000 reads in all

struct Tally {
  std::uint64_t reads = 0, bytes = 0, zero_ranges = 0, mismatches = 0, errors = 0;
};

struct ReadTarget {
  std::string mounted, truth;
  std::uint64_t size = 0;
};

// True when `got` (read at file offset `off`) holds zeros from its first wrong byte `at` to
// the end of that file page: an unfilled hole.
bool ZeroFilled(const std::string& got, std::uint64_t off, std::size_t at) {
  const std::uint64_t page_end = (off + at) / 4096 * 4096 + 4096;
  const std::size_t end =
      static_cast<std::size_t>(std::min<std::uint64_t>(got.size(), page_end - off));
  return std::all_of(got.begin() + static_cast<long>(at), got.begin() + static_cast<long>(end),
                     [](char c) { return c == 0; });
}

// One reader process: random whole files and random ranges of the big files.
Tally ReadMany(const std::vector<ReadTarget>& targets, unsigned seed) {
  Tally t;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < kReadsPerReader; ++i) {
    // Half the reads go to the big files (the first 9 targets), half to any file.
    const ReadTarget& target = targets[rng() % (i % 2 == 0 ? 9 : targets.size())];
    std::uint64_t off = 0, len = target.size;
    if (target.size > (1 << 20)) {
      len = 4096 + rng() % (512 * 1024);
      off = rng() % (target.size - len);
    }
    std::string got(len, '\0'), want(len, '\0');
    UniqueFd m(::open(target.mounted.c_str(), O_RDONLY | O_CLOEXEC));
    UniqueFd w(::open(target.truth.c_str(), O_RDONLY | O_CLOEXEC));
    ++t.reads;
    std::size_t done = 0;
    while (m.valid() && done < len) {
      const ssize_t n =
          ::pread(m.get(), got.data() + done, len - done, static_cast<off_t>(off + done));
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    if (!m.valid() || done != len ||
        ::pread(w.get(), want.data(), len, static_cast<off_t>(off)) != static_cast<ssize_t>(len)) {
      ++t.errors;
      continue;
    }
    t.bytes += len;
    if (got == want) continue;
    std::size_t at = 0;
    while (got[at] == want[at]) ++at;
    ZeroFilled(got, off, at) ? ++t.zero_ranges : ++t.mismatches;
  }
  return t;
}

class FanotifyDaemonKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = fanotify_test::KernelSkipReason();
    if (!why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(fanotify_test::EnterPrivateMountNamespace().ok());
    daemon_ = std::make_unique<FanotifyDaemon>(dir_.path());
  }
  void TearDown() override {
    if (daemon_ != nullptr) {
      const std::string log = daemon_->log();
      EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log;
      daemon_->Kill();
    }
    for (int i = 0; i < 3; ++i) ::umount2((dir_ / ("mnt" + std::to_string(i))).c_str(), MNT_DETACH);
  }

  TempDir dir_{"fankill"};
  std::unique_ptr<FanotifyDaemon> daemon_;
};

TEST_F(FanotifyDaemonKillTest, KillNineOfTheWorkerDuringOneThousandReadsCostsReadersNothing) {
  std::vector<ReadTarget> targets, small;
  for (int i = 0; i < 3; ++i) {
    const std::string tree = dir_ / ("tree" + std::to_string(i));
    erofs_test::MakeTree(tree, 40 + i);
    for (int b = 0; b < 3; ++b) {
      erofs_test::WriteFile(tree + "/big" + std::to_string(b),
                            erofs_test::PatternBytes(8 << 20, 500 + i * 10 + b));
    }
    const std::string image = dir_ / ("image" + std::to_string(i));
    ASSERT_TRUE(MakeErofs(image, tree, {"-Enoinline_data"}));
    daemon_->Import(image, "img" + std::to_string(i));
    for (const auto& e : std::filesystem::recursive_directory_iterator(tree)) {
      if (!e.is_regular_file() || e.is_symlink()) continue;
      const std::string rel = e.path().lexically_relative(tree).string();
      ReadTarget t{dir_ / ("mnt" + std::to_string(i) + "/" + rel), e.path().string(),
                   static_cast<std::uint64_t>(e.file_size())};
      (rel.rfind("big", 0) == 0 ? targets : small).push_back(std::move(t));
    }
  }
  ASSERT_EQ(targets.size(), 9u);
  targets.insert(targets.end(), small.begin(), small.end());
  // No write-ahead: one event per kernel read, so the kill finds many in flight.
  daemon_->Start({"--write-ahead", "0", "--threads", "8"});
  for (int i = 0; i < 3; ++i) {
    auto r = daemon_->Mount("img" + std::to_string(i), dir_ / ("mnt" + std::to_string(i)));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  const pid_t worker = daemon_->WorkerPid();
  ASSERT_GT(worker, 0);

  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  std::vector<std::pair<pid_t, int>> readers;  // pid, result pipe
  for (int r = 0; r < kReaders; ++r) {
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);  // else no reader ever sees the start (EOF) below
      char c;
      (void)!::read(go[0], &c, 1);
      const Tally t = ReadMany(targets, static_cast<unsigned>(r) * 7919u + 1);
      (void)!::write(out[1], &t, sizeof t);
      ::_exit(0);
    }
    ::close(out[1]);
    readers.emplace_back(pid, out[0]);
  }
  ::close(go[0]);
  ::close(go[1]);  // every reader starts now
  // Kill once the daemon is busy serving events.
  const auto start = std::chrono::steady_clock::now();
  while (daemon_->Metric("lazyblob_requests_total", {R"(op="read")"}) < 150 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    ::usleep(5'000);
  }
  const double events_before = daemon_->Metric("lazyblob_requests_total", {R"(op="read")"});
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  int finished_at_kill = 0;
  for (auto& [pid, fd] : readers) finished_at_kill += ::waitpid(pid, nullptr, WNOHANG) == pid;

  Tally sum;
  int hung = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  for (auto& [pid, fd] : readers) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    Tally t;
    if (::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count()))) == 1 &&
        ::read(fd, &t, sizeof t) == sizeof t) {
      sum.reads += t.reads;
      sum.bytes += t.bytes;
      sum.zero_ranges += t.zero_ranges;
      sum.mismatches += t.mismatches;
      sum.errors += t.errors;
    } else {
      ++hung;
      ::kill(pid, SIGKILL);
    }
    ::waitpid(pid, nullptr, 0);
    ::close(fd);
  }
  const pid_t new_worker = daemon_->WaitNewWorker(worker);
  const std::string log = daemon_->log();
  std::smatch m;
  const std::string orphans =
      std::regex_search(log, m, std::regex(R"(answering (\d+) event\(s\) a previous worker)"))
          ? m[1].str()
          : "0";
  const bool swept = log.find("unrecorded event(s)") != std::string::npos;
  std::printf(
      "kill -9 after %.0f events (%d of %d readers done): %llu reads, %llu bytes checked, %llu "
      "zero-filled ranges, %llu other mismatches, %llu errors, %d hung; orphans answered by the "
      "new worker: %s%s\n",
      events_before, finished_at_kill, kReaders, static_cast<unsigned long long>(sum.reads),
      static_cast<unsigned long long>(sum.bytes), static_cast<unsigned long long>(sum.zero_ranges),
      static_cast<unsigned long long>(sum.mismatches), static_cast<unsigned long long>(sum.errors),
      hung, orphans.c_str(), swept ? " (+ the unrecorded-event sweep)" : "");
  EXPECT_LT(finished_at_kill, kReaders) << "every reader was done before the kill";
  EXPECT_EQ(hung, 0);
  EXPECT_EQ(sum.reads, static_cast<std::uint64_t>(kReaders * kReadsPerReader));
  EXPECT_EQ(sum.zero_ranges, 0u);
  EXPECT_EQ(sum.mismatches, 0u);
  EXPECT_EQ(sum.errors, 0u);
  EXPECT_GT(new_worker, 0);
  std::size_t deaths = 0;
  for (std::size_t at = log.find(" died ("); at != std::string::npos;
       at = log.find(" died (", at + 1)) {
    ++deaths;
  }
  EXPECT_EQ(deaths, 1u) << "only the worker we killed may die:\n" << log;
  // The new worker serves on: every file of every image, then a clean stop.
  for (int i = 0; i < 3; ++i) {
    std::size_t files = 0;
    const auto bad = fanotify_test::CompareTreesBySha256(
        dir_ / ("tree" + std::to_string(i)), dir_ / ("mnt" + std::to_string(i)), &files);
    EXPECT_TRUE(bad.empty()) << bad.size() << " files differ, first " << bad.front();
    EXPECT_EQ(daemon_->Umount(dir_ / ("mnt" + std::to_string(i))).code, 0);
  }
  EXPECT_EQ(daemon_->Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace lazyblob
