// origin_bench: one timed "container start" through a real lazyblobd on a KernelSimulator
// (bench/origin/run.sh drives it; the simulator stands in for the kernel, natively on the
// host, because the VM is too slow to time).
//
//   origin_bench --work DIR --image IMG --id ID --ranges FILE --out JSON
//                [--scrape "PORT FILE"] -- LAZYBLOBD ARGS...
//
// Starts the simulator (cache files in DIR/cache, emptied first), then the daemon with
// ARGS plus `--sim-socket DIR/sim.sock`; once it is attached, the clock starts: mount ID
// (OPEN), then read each range of FILE ("offset length" lines, the start set in the order
// the program read it) with 128 KiB kernel-style READs, every byte compared with IMG.
// Writes {"ttfb_s", "total_s", "mount_s", "bytes", "ranges", "kernel_reads" (READs the
// kernel sent the daemon: misses), "kernel_read_bytes", "eios", "mismatches"}; exit 1
// when a read fails or differs.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "transport/kernel_simulator.h"

namespace lazyblob {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int Fail(const std::string& why) {
  std::fprintf(stderr, "origin_bench: %s\n", why.c_str());
  return 1;
}

int Run(int argc, char** argv) {
  std::string work, image, id, ranges_path, out, scrape;
  std::vector<std::string> daemon;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      for (++i; i < argc; ++i) daemon.push_back(argv[i]);
      break;
    }
    if (i + 1 >= argc) return Fail("missing value for " + a);
    const std::string v = argv[++i];
    if (a == "--work")
      work = v;
    else if (a == "--image")
      image = v;
    else if (a == "--id")
      id = v;
    else if (a == "--ranges")
      ranges_path = v;
    else if (a == "--out")
      out = v;
    else if (a == "--scrape")
      scrape = v;
    else
      return Fail("unknown option " + a);
  }
  if (work.empty() || image.empty() || id.empty() || ranges_path.empty() || daemon.empty()) {
    return Fail(
        "usage: origin_bench --work DIR --image IMG --id ID --ranges FILE --out JSON -- "
        "LAZYBLOBD ARGS...");
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  {
    std::ifstream in(ranges_path);
    for (std::uint64_t off, len; in >> off >> len;) ranges.emplace_back(off, len);
  }
  std::filesystem::remove_all(work + "/cache");
  std::filesystem::create_directories(work + "/cache");
  KernelSimulatorOptions so;
  so.cache_dir = work + "/cache";
  so.max_readahead_bytes = 128 * 1024;
  auto sim = KernelSimulator::Open(so);
  if (!sim.ok()) return Fail(sim.status().ToString());
  const std::string sock = work + "/sim.sock";
  std::filesystem::remove(sock);
  if (Status s = (*sim)->Listen(sock); !s.ok()) return Fail(s.ToString());
  daemon.push_back("--sim-socket");
  daemon.push_back(sock);
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (auto& a : daemon) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  auto stop = [&] {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  };
  for (int i = 0; i < 3000 && !(*sim)->device_attached(); ++i) ::usleep(10'000);
  if (!(*sim)->device_attached()) {
    stop();
    return Fail("the daemon did not attach");
  }
  const Clock::time_point t0 = Clock::now();
  auto mount = (*sim)->Mount("erofs,bench", id, image);
  const double mount_s = Since(t0);
  if (!mount.ok()) {
    stop();
    return Fail("mount: " + mount.status().ToString());
  }
  double ttfb = -1;
  std::uint64_t bytes = 0;
  int failed = 0;
  std::vector<std::byte> buf;
  for (const auto& [off, len] : ranges) {
    buf.resize(len);
    auto r = (*sim)->Read(*mount, off, buf);
    if (!r.ok()) {
      ++failed;
      std::fprintf(stderr, "origin_bench: read of %llu+%llu: %s\n",
                   static_cast<unsigned long long>(off), static_cast<unsigned long long>(len),
                   r.status().ToString().c_str());
      continue;
    }
    bytes += *r;
    if (ttfb < 0) ttfb = Since(t0);
  }
  const double total = Since(t0);
  const SimCounters c = (*sim)->counters();
  if (!scrape.empty()) {
    // Close the file first (untimed), so the daemon settles what replay wrote and no demand
    // asked for (lazyblob_prefetch_wasted_bytes_total is counted at close).
    if (Status s = (*sim)->Unmount(*mount); !s.ok()) {
      std::fprintf(stderr, "origin_bench: unmount: %s\n", s.ToString().c_str());
    }
    ::usleep(200'000);
    // "PORT FILE": the daemon's /metrics after the run (it needs --metrics-listen).
    const std::string port = scrape.substr(0, scrape.find(' '));
    const std::string file = scrape.substr(scrape.find(' ') + 1);
    const std::string cmd = "curl -sf http://127.0.0.1:" + port + "/metrics > " + file;
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "origin_bench: scrape failed\n");
  }
  stop();
  std::ofstream o(out);
  o << "{\"ttfb_s\": " << ttfb << ", \"total_s\": " << total << ", \"mount_s\": " << mount_s
    << ", \"bytes\": " << bytes << ", \"ranges\": " << ranges.size() << ", \"failed\": " << failed
    << ", \"kernel_reads\": " << c.reads_sent
    << ", \"kernel_read_bytes\": " << c.read_bytes_requested << ", \"eios\": " << c.eios
    << ", \"mismatches\": " << c.data_mismatches << "}\n";
  if (failed != 0 || c.data_mismatches != 0) return Fail("reads failed or differed");
  return 0;
}

}  // namespace
}  // namespace lazyblob

int main(int argc, char** argv) { return lazyblob::Run(argc, argv); }
