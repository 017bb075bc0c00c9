// fanotify_bench: cold and warm reads through lazyblobd's fanotify front end vs EROFS
// file-backed mounts of the raw image and of an mkfs.erofs -zlz4hc image (the peer a user
// picks for compression alone), plus the host limit loop (pread + zstd + pwrite of every
// chunk, bench/read_bench_limit.h) at the same thread count. Driven by bench/fanotify/run.sh.
//
// Per workload, per thread count T, per repetition (the modes back to back, paired):
//   fanotify  fresh cache dir (fresh sparse file), the store's packs evicted, a fresh
//             daemon (--threads T, fresh chunk cache); `lazyblob mount` (timed apart as
//             "prepare"); cold = read every file with T reader threads; rewarm = the same
//             again on the same mount; warm = a fresh mount of the now complete (unmarked)
//             file; marked = a fresh mount by a daemon that keeps the complete file marked
//             (--fanotify-keep-marks), every backing read answered on the fast path;
//   raw/lz4hc posix_fadvise(DONTNEED) of the image, fresh file-backed mount(2), read (cold),
//             re-read on the same mount (rewarm), fresh mount with the image cached (warm);
//   limit     the store's packs evicted, T threads write the whole blob into a new file.
// Everything runs in a private mount namespace; no global cache drop.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "bench/read_bench_limit.h"
#include "bench/read_bench_util.h"
#include "store/chunk_store.h"
#include "transport/fanotify_group.h"

namespace lazyblob::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Workload {
  std::string name, raw, lz4hc, store, blob;
};

struct Args {
  std::string lazyblob, lazyblobd, work, out;
  std::vector<std::string> workloads;  // NAME,RAW,LZ4HC,STORE,BLOB
  std::vector<int> threads{1, 4};
  int reps = 3;
};

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "fanotify_bench: %s\n", why.c_str());
  std::exit(1);
}

double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double l = 0;
  in >> l;
  return l;
}

void Evict(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid()) ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
}

void EvictPacks(const std::string& store) {
  for (const auto& e : fs::directory_iterator(store + "/packs")) Evict(e.path());
}

// Reads every regular file under `dir` with `threads` threads: files dealt round-robin, or
// one big file cut into `threads` slices. Returns seconds; `bytes` gets what was read.
double ReadAll(const std::string& dir, int threads, std::uint64_t* bytes) {
  std::vector<std::pair<std::string, std::uint64_t>> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && !e.is_symlink()) files.emplace_back(e.path(), e.file_size());
  }
  std::sort(files.begin(), files.end());
  struct Piece {
    std::string path;
    std::uint64_t off, len;
  };
  std::vector<std::vector<Piece>> plan(threads);
  if (files.size() == 1) {
    const std::uint64_t size = files[0].second, per = (size / threads + 4095) / 4096 * 4096;
    for (int t = 0; t < threads; ++t) {
      const std::uint64_t off = std::min(size, per * t);
      plan[t].push_back({files[0].first, off, std::min(per, size - off)});
    }
  } else {
    for (std::size_t i = 0; i < files.size(); ++i) {
      plan[i % threads].push_back({files[i].first, 0, files[i].second});
    }
  }
  std::atomic<std::uint64_t> total{0};
  std::atomic<bool> failed{false};
  const Clock::time_point t0 = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<char> buf(1 << 20);
      for (const Piece& p : plan[t]) {
        UniqueFd fd(::open(p.path.c_str(), O_RDONLY | O_CLOEXEC));
        for (std::uint64_t at = p.off; fd.valid() && at < p.off + p.len;) {
          const ssize_t n =
              ::pread(fd.get(), buf.data(), std::min<std::uint64_t>(buf.size(), p.off + p.len - at),
                      static_cast<off_t>(at));
          if (n <= 0) {
            failed = true;
            break;
          }
          at += static_cast<std::uint64_t>(n);
          total += static_cast<std::uint64_t>(n);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  const double s = SecondsSince(t0);
  if (failed) Die("a read under " + dir + " failed");
  *bytes = total.load();
  return s;
}

void MountImage(const std::string& image, const std::string& dir) {
  fs::create_directories(dir);
  if (::mount(image.c_str(), dir.c_str(), "erofs", MS_RDONLY, nullptr) != 0) {
    Die("mount " + image + ": " + std::strerror(errno));
  }
}
void Umount(const std::string& dir) {
  if (::umount2(dir.c_str(), 0) != 0) Die("umount " + dir + ": " + std::strerror(errno));
}

int RunQuiet(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::close_range(3, ~0U, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// One lazyblobd (fanotify) for one phase of a repetition.
class Daemon {
 public:
  Daemon(const Args& a, const Workload& w, const std::string& cache, int threads, bool keep_marks)
      : args_(a), socket_(cache + "/ctl.sock"), log_(cache + "/daemon.log") {
    std::vector<std::string> argv = {a.lazyblobd,
                                     "--store",
                                     w.store,
                                     "--cache-dir",
                                     cache,
                                     "--frontend",
                                     "fanotify",
                                     "--control-socket",
                                     socket_,
                                     "--threads",
                                     std::to_string(threads),
                                     "--metrics-listen",
                                     "127.0.0.1:0",
                                     "--log-level",
                                     "info"};
    if (keep_marks) argv.push_back("--fanotify-keep-marks");
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 2);
      ::close_range(3, ~0U, 0);
      std::vector<char*> v;
      for (auto& s : argv) v.push_back(s.data());
      v.push_back(nullptr);
      ::execv(v[0], v.data());
      ::_exit(127);
    }
    for (int i = 0; i < 3000 && !Serving(); ++i) ::usleep(10'000);
    if (!Serving()) Die("lazyblobd did not start; see " + log_);
  }
  ~Daemon() {
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  // `lazyblob mount`; returns its seconds.
  double Mount(const std::string& blob, const std::string& dir) {
    fs::create_directories(dir);
    const Clock::time_point t0 = Clock::now();
    if (RunQuiet({args_.lazyblob, "mount", blob, dir, "--control-socket", socket_}, log_) != 0) {
      Die("lazyblob mount " + blob + " failed; see " + log_);
    }
    return SecondsSince(t0);
  }
  // Counters of the daemon's /metrics whose names start with `prefix` (labels dropped,
  // summed), e.g. lazyblob_stage_seconds_total -> {stage: seconds}.
  std::map<std::string, double> Scrape(const std::string& prefix, const std::string& label) {
    std::map<std::string, double> out;
    std::ifstream in(log_);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t at = text.rfind("(port ");
    if (at == std::string::npos) return out;
    const int port = std::atoi(text.c_str() + at + 6);
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return out;
    const std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
    (void)!::write(fd.get(), req.data(), req.size());
    std::string body;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) body.append(buf, n);
    std::istringstream lines(body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(prefix, 0) != 0) continue;
      std::string key = "total";
      const std::size_t l = line.find(label + "=\"");
      if (!label.empty() && l != std::string::npos) {
        const std::size_t v = l + label.size() + 2;
        key = line.substr(v, line.find('"', v) - v);
      }
      out[key] += std::atof(line.c_str() + line.rfind(' ') + 1);
    }
    return out;
  }
  void Unmount(const std::string& dir) {
    if (RunQuiet({args_.lazyblob, "umount", dir, "--control-socket", socket_}, log_) != 0) {
      Die("lazyblob umount " + dir + " failed; see " + log_);
    }
  }

 private:
  bool Serving() const {
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", socket_.c_str());
    return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  const Args& args_;
  std::string socket_, log_;
  pid_t pid_ = -1;
};

// One repetition of every mode for workload `w` at `threads`.
json Rep(const Args& a, const Workload& w, int threads, int rep,
         const std::vector<LimitChunk>& chunks, std::uint64_t blob_size) {
  json r;
  r["load_before"] = LoadAverage();
  const std::string base = a.work + "/" + w.name + "-t" + std::to_string(threads);
  const std::string cache = base + "-cache-" + std::to_string(rep), mnt = base + "-mnt";
  fs::remove_all(cache);
  fs::create_directories(cache);
  std::uint64_t bytes = 0;
  {
    EvictPacks(w.store);
    Daemon d(a, w, cache, threads, false);
    r["fanotify_prepare_s"] = d.Mount(w.blob, mnt);
    r["fanotify_cold_s"] = ReadAll(mnt, threads, &bytes);
    // Where the daemon's time went (seconds summed over its threads) and how many events.
    r["fanotify_cold_stage_s"] = d.Scrape("lazyblob_stage_seconds_total", "stage");
    r["fanotify_cold_events"] = d.Scrape("lazyblob_requests_total{op=\"read\"", "")["total"];
    r["fanotify_rewarm_s"] = ReadAll(mnt, threads, &bytes);
    d.Unmount(mnt);
    d.Mount(w.blob, mnt);
    r["fanotify_warm_s"] = ReadAll(mnt, threads, &bytes);
    d.Unmount(mnt);
  }
  {
    Daemon d(a, w, cache, threads, true);
    d.Mount(w.blob, mnt);
    r["fanotify_marked_warm_s"] = ReadAll(mnt, threads, &bytes);
    d.Unmount(mnt);
  }
  for (const auto& [mode, image] : {std::pair{"raw", w.raw}, std::pair{"lz4hc", w.lz4hc}}) {
    Evict(image);
    MountImage(image, mnt);
    r[std::string(mode) + "_cold_s"] = ReadAll(mnt, threads, &bytes);
    r[std::string(mode) + "_rewarm_s"] = ReadAll(mnt, threads, &bytes);
    Umount(mnt);
    MountImage(image, mnt);
    r[std::string(mode) + "_warm_s"] = ReadAll(mnt, threads, &bytes);
    Umount(mnt);
  }
  r["bytes_read"] = bytes;
  EvictPacks(w.store);
  Result<LimitRun> limit =
      RunLimit(w.store, chunks, blob_size, base + "-limit", threads, Pattern::kSequential);
  if (!limit.ok()) Die(limit.status().ToString());
  r["limit_s"] = limit->seconds;
  fs::remove_all(base + "-limit");
  fs::remove_all(cache);
  r["load_after"] = LoadAverage();
  return r;
}

json RunWorkload(const Args& a, const Workload& w) {
  ChunkStoreOptions so;
  so.path = w.store;
  auto store = ChunkStore::Open(so);
  if (!store.ok()) Die(store.status().ToString());
  auto blob = (*store)->OpenBlob(w.blob);
  if (!blob.ok()) Die(blob.status().ToString());
  const BlobMap map = *blob->map;
  blob = Status(StatusCode::kCancelled, "released");
  store->reset();
  auto chunks = LocateChunks(w.store, map);
  if (!chunks.ok()) Die(chunks.status().ToString());
  json out;
  out["blob_bytes"] = map.size;
  out["raw_image_bytes"] = fs::file_size(w.raw);
  out["lz4hc_image_bytes"] = fs::file_size(w.lz4hc);
  for (int t : a.threads) {
    json reps = json::array();
    for (int rep = 1; rep <= a.reps; ++rep) {
      std::fprintf(stderr, "fanotify_bench: %s, %d thread(s), rep %d/%d\n", w.name.c_str(), t, rep,
                   a.reps);
      reps.push_back(Rep(a, w, t, rep, *chunks, map.size));
      std::cerr << "  " << reps.back().dump() << "\n";
    }
    out["threads"][std::to_string(t)] = reps;
  }
  return out;
}

}  // namespace
}  // namespace lazyblob::bench

int main(int argc, char** argv) {
  using namespace lazyblob::bench;
  Args a;
  CLI::App app{"fanotify front end vs EROFS file-backed mounts (bench/fanotify/run.sh)"};
  std::string probe;
  auto* probe_opt = app.add_option(
      "--probe", probe,
      "only check that DIR's filesystem takes pre-content marks: exit 0 if so, 77 if not");
  app.add_option("--lazyblob", a.lazyblob)->excludes(probe_opt);
  app.add_option("--lazyblobd", a.lazyblobd)->excludes(probe_opt);
  app.add_option("--work", a.work, "scratch dir on ext4/xfs")->excludes(probe_opt);
  app.add_option("--out", a.out, "JSON results")->excludes(probe_opt);
  app.add_option("--workload", a.workloads, "NAME,RAW_IMAGE,LZ4HC_IMAGE,STORE,BLOB_ID")
      ->excludes(probe_opt);
  app.add_option("--threads", a.threads)->delimiter(',');
  app.add_option("--reps", a.reps);
  CLI11_PARSE(app, argc, argv);
  if (!probe.empty()) {
    const lazyblob::Status s = lazyblob::FanotifyGroup::ProbeSupport(probe);
    if (s.ok()) return 0;
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 77;
  }
  if (a.lazyblob.empty() || a.lazyblobd.empty() || a.work.empty() || a.out.empty() ||
      a.workloads.empty()) {
    Die("--lazyblob, --lazyblobd, --work, --out and --workload are required (or --probe DIR)");
  }
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)) {
    Die(std::string("a private mount namespace: ") + std::strerror(errno));
  }
  ::signal(SIGPIPE, SIG_IGN);
  fs::create_directories(a.work);
  nlohmann::json results;
  results["reps"] = a.reps;
  results["threads"] = a.threads;
  results["nproc"] = std::thread::hardware_concurrency();
  for (const std::string& spec : a.workloads) {
    std::vector<std::string> f;
    std::stringstream ss(spec);
    for (std::string part; std::getline(ss, part, ',');) f.push_back(part);
    if (f.size() != 5) Die("--workload wants NAME,RAW,LZ4HC,STORE,BLOB: " + spec);
    results["workloads"][f[0]] = RunWorkload(a, Workload{f[0], f[1], f[2], f[3], f[4]});
  }
  std::ofstream(a.out) << results.dump(1) << "\n";
  std::fprintf(stderr, "fanotify_bench: wrote %s\n", a.out.c_str());
  return 0;
}
