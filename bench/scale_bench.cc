// scale_bench: issue 14, item 10. 10,000 concurrent READs over 1,000 open objects through the
// REAL lazyblobd (supervisor + worker) on the KernelSimulator, with the worker's resident
// memory and fd count sampled while they run and set against the bounds it is configured
// with (the request queue, the chunk cache, the fd limit). A benchmark: it prints figures
// and writes them out; it asserts only that every read returned the right bytes.
//
//   scale_bench --lazyblobd PATH [--objects 1000] [--reads 10000] [--threads 8]
//               [--out bench/results/scale]     (writes scale.json and scale.md)
//
// Each blob is 640 KiB of 4 KiB chunks drawn from a shared pool (the store stays small);
// read i goes to object i % objects at block 16 * (i / objects), so no READ's readahead
// covers another's block. Every reader thread (64 KiB stack) waits on one gate, then all
// read at once: the simulator sends the READs as fast as the daemon takes them.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/request_engine.h"
#include "store/chunk_store.h"
#include "transport/kernel_simulator.h"

namespace lazyblob::bench {
namespace {

constexpr std::size_t kBlock = 4096;
constexpr std::size_t kBlocksPerBlob = 160;  // 640 KiB
constexpr std::size_t kPool = 64;

// The block `b` of blob `i`: pool block, with the blob and block numbers in its first bytes
// so every (blob, block) differs and a misplaced write is seen.
void FillBlock(std::size_t blob, std::size_t block, std::byte* out) {
  const std::size_t pool = (blob * 7 + block * 13) % kPool;
  for (std::size_t k = 0; k < kBlock; ++k) {
    out[k] = static_cast<std::byte>((pool * 131 + k * 17 + (k >> 7)) & 0xff);
  }
  const std::uint64_t tag[2] = {blob, block};
  std::memcpy(out, tag, sizeof tag);
}

struct Sample {
  std::uint64_t rss_kib = 0, hwm_kib = 0;
  std::size_t fds = 0;
};

Sample SampleProcess(pid_t pid) {
  Sample s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::stoull(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) s.hwm_kib = std::stoull(line.substr(6));
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++s.fds;
  }
  return s;
}

std::string SoftFdLimit(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream f(line.substr(14));
    std::string soft;
    f >> soft;
    return soft;
  }
  return "?";
}

pid_t ChildOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t child = -1;
  in >> child;
  return child;
}

struct ReaderJob {
  KernelSimulator* sim;
  SimMount mount;
  std::size_t blob, block;
  std::mutex* mu;
  std::condition_variable* cv;
  bool* go;
  std::atomic<int>* failed;
  std::atomic<int>* wrong;
};

void* RunReader(void* arg) {
  auto* j = static_cast<ReaderJob*>(arg);
  {
    std::unique_lock<std::mutex> lock(*j->mu);
    j->cv->wait(lock, [&] { return *j->go; });
  }
  std::vector<std::byte> buf(kBlock), want(kBlock);
  auto r = j->sim->Read(j->mount, j->block * kBlock, buf);
  if (!r.ok() || *r != kBlock) {
    ++*j->failed;
    return nullptr;
  }
  FillBlock(j->blob, j->block, want.data());
  if (buf != want) ++*j->wrong;
  return nullptr;
}

int Run(int argc, char** argv) {
  std::string lazyblobd, out = "bench/results/scale";
  int objects = 1000, reads = 10000, threads = 8;
  CLI::App app{"scale_bench: concurrent READs over many open objects through lazyblobd"};
  app.add_option("--lazyblobd", lazyblobd, "lazyblobd binary")->required();
  app.add_option("--objects", objects, "open objects (blobs mounted)");
  app.add_option("--reads", reads, "concurrent reads (one 4 KiB block each)");
  app.add_option("--threads", threads, "lazyblobd --threads");
  app.add_option("--out", out, "output prefix (.json and .md are added)");
  CLI11_PARSE(app, argc, argv);
  if (static_cast<std::size_t>(reads) > static_cast<std::size_t>(objects) * (kBlocksPerBlob / 16)) {
    std::fprintf(stderr, "at most %zu reads per object\n", kBlocksPerBlob / 16);
    return 2;
  }

  char tmpl[] = "/var/tmp/lazyblob-scale-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;
  std::filesystem::create_directories(dir + "/cache");
  const auto t_import = std::chrono::steady_clock::now();
  {
    // In a child: the store's import threads never share the process with the readers.
    const pid_t importer = ::fork();
    if (importer == 0) {
      ChunkStoreOptions so;
      so.path = dir + "/store";
      so.writable = true;
      so.create_if_missing = true;
      so.default_chunker.kind = ChunkerKind::kFixed;
      so.default_chunker.min_bytes = kBlock;
      so.default_chunker.avg_bytes = kBlock;
      so.import_threads = 1;
      auto store = ChunkStore::Open(so);
      if (!store.ok()) {
        std::fprintf(stderr, "store: %s\n", store.status().ToString().c_str());
        ::_exit(1);
      }
      std::vector<std::byte> image(kBlocksPerBlob * kBlock);
      const std::string path = dir + "/image";
      for (int b = 0; b < objects; ++b) {
        for (std::size_t k = 0; k < kBlocksPerBlob; ++k) FillBlock(b, k, &image[k * kBlock]);
        std::ofstream(path, std::ios::binary | std::ios::trunc)
            .write(reinterpret_cast<const char*>(image.data()),
                   static_cast<std::streamsize>(image.size()));
        ImportOptions io;
        io.id = "b" + std::to_string(b);
        auto r = (*store)->ImportBlob(path, io);
        if (!r.ok()) {
          std::fprintf(stderr, "import: %s\n", r.status().ToString().c_str());
          ::_exit(1);
        }
      }
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(importer, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "import failed (%d)\n", status);
      return 1;
    }
  }
  const double import_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_import).count();

  KernelSimulatorOptions ko;
  ko.cache_dir = dir + "/cache";
  ko.reply_timeout_ms = 600'000;
  auto sim_or = KernelSimulator::Open(ko);
  if (!sim_or.ok()) {
    std::fprintf(stderr, "simulator: %s\n", sim_or.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<KernelSimulator> sim = std::move(*sim_or);
  if (Status l = sim->Listen(dir + "/sim.sock"); !l.ok()) {
    std::fprintf(stderr, "listen: %s\n", l.ToString().c_str());
    return 1;
  }
  const std::string threads_arg = std::to_string(threads);
  const pid_t daemon = ::fork();
  if (daemon == 0) {
    std::vector<std::string> args = {lazyblobd,
                                     "--store",
                                     dir + "/store",
                                     "--sim-socket",
                                     dir + "/sim.sock",
                                     "--threads",
                                     threads_arg,
                                     "--write-ahead",
                                     "0",
                                     "--log-level",
                                     "warn"};
    std::vector<char*> av;
    for (auto& a : args) av.push_back(a.data());
    av.push_back(nullptr);
    ::execv(av[0], av.data());
    ::_exit(127);
  }
  for (int i = 0; i < 3000 && !sim->device_attached(); ++i) ::usleep(10'000);
  pid_t worker = -1;
  for (int i = 0; i < 1000 && worker <= 0; ++i, ::usleep(10'000)) worker = ChildOf(daemon);
  if (!sim->device_attached() || worker <= 0) {
    std::fprintf(stderr, "lazyblobd did not attach\n");
    ::kill(daemon, SIGKILL);
    return 1;
  }
  const Sample idle = SampleProcess(worker);
  std::vector<SimMount> mounts;
  for (int b = 0; b < objects; ++b) {
    auto m = sim->Mount("erofs,scale", "b" + std::to_string(b));
    if (!m.ok()) {
      std::fprintf(stderr, "mount b%d: %s\n", b, m.status().ToString().c_str());
      ::kill(daemon, SIGKILL);
      return 1;
    }
    mounts.push_back(*m);
  }
  const Sample mounted = SampleProcess(worker);

  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  std::atomic<int> failed{0}, wrong{0};
  std::vector<ReaderJob> jobs(static_cast<std::size_t>(reads));
  std::vector<pthread_t> tids;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (int i = 0; i < reads; ++i) {
    const std::size_t blob = static_cast<std::size_t>(i % objects);
    jobs[static_cast<std::size_t>(i)] = {
        sim.get(), mounts[blob], blob,  16 * static_cast<std::size_t>(i / objects), &mu, &cv,
        &go,       &failed,      &wrong};
    pthread_t t;
    if (pthread_create(&t, &attr, RunReader, &jobs[static_cast<std::size_t>(i)]) != 0) {
      std::fprintf(stderr, "pthread_create failed after %d threads\n", i);
      return 1;
    }
    tids.push_back(t);
  }
  std::atomic<bool> sampling{true};
  Sample peak;
  std::size_t peak_pending = 0;
  std::thread sampler([&] {
    while (sampling) {
      const Sample s = SampleProcess(worker);
      peak.rss_kib = std::max(peak.rss_kib, s.rss_kib);
      peak.hwm_kib = std::max(peak.hwm_kib, s.hwm_kib);
      peak.fds = std::max(peak.fds, s.fds);
      peak_pending = std::max(peak_pending, sim->pending_requests());
      ::usleep(5'000);
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    go = true;
  }
  cv.notify_all();
  for (pthread_t t : tids) pthread_join(t, nullptr);
  const double read_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sampling = false;
  sampler.join();
  const Sample after = SampleProcess(worker);
  const std::string soft_limit = SoftFdLimit(worker);
  const SimCounters c = sim->counters();
  ::kill(daemon, SIGTERM);
  int status = 0;
  ::waitpid(daemon, &status, 0);
  sim.reset();
  std::filesystem::remove_all(dir);

  const EngineOptions eo;
  nlohmann::json j = {
      {"objects", objects},
      {"reads", reads},
      {"daemon_threads", threads},
      {"import_s", import_s},
      {"read_s", read_s},
      {"reads_per_s", reads / read_s},
      {"reads_failed", failed.load()},
      {"reads_wrong_bytes", wrong.load()},
      {"sim_reads_sent", c.reads_sent},
      {"sim_peak_pending_requests", peak_pending},
      {"worker_rss_kib_idle", idle.rss_kib},
      {"worker_rss_kib_mounted", mounted.rss_kib},
      {"worker_rss_kib_peak_sampled", peak.rss_kib},
      {"worker_vmhwm_kib", std::max(peak.hwm_kib, after.hwm_kib)},
      {"worker_fds_idle", idle.fds},
      {"worker_fds_mounted", mounted.fds},
      {"worker_fds_peak_sampled", peak.fds},
      {"bound_fd_soft_limit", soft_limit},
      {"bound_max_queued_requests", eo.max_queued_requests},
      {"bound_queue_bytes_approx", eo.max_queued_requests * 200},
      {"bound_chunk_cache_bytes", eo.chunk_cache_bytes},
      {"daemon_exit_status", status},
  };
  std::ofstream(out + ".json") << j.dump(2) << "\n";
  std::ofstream md(out + ".md");
  md << "# scale_bench: " << reads << " concurrent READs over " << objects
     << " open objects (simulator)\n\n"
     << "| figure | value | bound |\n|---|---|---|\n"
     << "| reads failed / wrong bytes | " << failed << " / " << wrong << " | 0 |\n"
     << "| READs sent by the simulator | " << c.reads_sent << " | |\n"
     << "| peak requests pending in the simulator | " << peak_pending << " | |\n"
     << "| wall time of the reads | " << read_s << " s | |\n"
     << "| worker RSS idle / 1,000 mounted / peak sampled | " << idle.rss_kib << " / "
     << mounted.rss_kib << " / " << peak.rss_kib << " KiB | chunk cache "
     << eo.chunk_cache_bytes / 1024 << " KiB + queue " << eo.max_queued_requests << " x ~200 B |\n"
     << "| worker VmHWM | " << std::max(peak.hwm_kib, after.hwm_kib) << " KiB | |\n"
     << "| worker fds idle / mounted / peak sampled | " << idle.fds << " / " << mounted.fds << " / "
     << peak.fds << " | RLIMIT_NOFILE soft " << soft_limit << " |\n";
  std::printf("%s\n", j.dump(2).c_str());
  return failed == 0 && wrong == 0 ? 0 : 1;
}

}  // namespace
}  // namespace lazyblob::bench

int main(int argc, char** argv) { return lazyblob::bench::Run(argc, argv); }
