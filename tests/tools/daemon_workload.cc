// daemon_workload: runs a known workload through the REAL lazyblobd (supervisor + worker)
// on a KernelSimulator with a real chunk store, and writes the metric values a Prometheus
// scraping the daemon must find, for tests/tools/prometheus_daemon_integration.sh.
//
//   daemon_workload METRICS_PORT EXPECT_JSON SERVE_SECONDS [LAZYBLOBD]
//
// LAZYBLOBD defaults to $LAZYBLOBD_BIN. The daemon gets --metrics-listen
// 127.0.0.1:METRICS_PORT, --write-ahead 0 and the simulator's socket.
//
// Workload (one reader thread, so every READ is answered before the next is sent):
//   blob A (3 MiB + 12345 bytes, random): mount, read every byte (checked against the image)
//   blob B (1 MiB of A, then 1.5 MiB + 777 random bytes): mount, read its first 2 MiB
//   "no-such-blob": mount, must fail (the daemon answers the OPEN with ENOENT)
//   blob C (random, one chunk's payload flipped in its pack): mount, read its first block
//   (ok), then one block of the corrupt chunk (must be EIO); unmount all.
// Expected values come from the simulator's counters (READs and bytes it sent) and from
// what is in the cache files afterwards (which chunks the daemon wrote), never from the
// daemon itself. Why each one is exact is written next to it in the JSON ("why").
//
// Then waits until the daemon's /metrics shows every request answered, writes EXPECT_JSON
// (written atomically: the script polls for it), keeps the daemon serving until
// EXPECT_JSON.stop exists or SERVE_SECONDS pass, SIGTERMs it and requires exit status 0.
// Exit status: 0 all fine, 1 workload or daemon failure (reason on stderr).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/aligned_buffer.h"
#include "store/chunk_store.h"
#include "transport/kernel_simulator.h"

namespace lazyblob {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// What Die() must clean up (it exits without unwinding).
pid_t g_daemon_pid = -1;
std::string g_dir;

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "daemon_workload: %s\n", why.c_str());
  if (g_daemon_pid > 0) {
    ::kill(g_daemon_pid, SIGKILL);
    ::waitpid(g_daemon_pid, nullptr, 0);
  }
  if (!g_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(g_dir, ec);
  }
  std::exit(1);
}

void Check(bool ok, const std::string& why) {
  if (!ok) Die(why);
}

void WriteFile(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  Check(out.good(), "writing " + path);
}

std::vector<char> RandomBytes(std::mt19937_64& rng, std::size_t n) {
  std::vector<char> v(n);
  for (auto& c : v) c = static_cast<char>(rng());
  return v;
}

// Flips one byte in the middle of the payload of the chunk record with `key` (FORMAT.md:
// 52-byte pack header, then 68-byte record headers: type at 5, key at 8, stored length at
// 60, payload after). Returns false when no pack holds it.
bool CorruptChunkRecord(const std::string& store_dir, const ChunkKey& key) {
  for (const auto& e : fs::directory_iterator(store_dir + "/packs")) {
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    const std::uint64_t size = fs::file_size(e.path());
    std::uint64_t off = 52;
    while (off + 68 <= size) {
      unsigned char h[68];
      f.seekg(static_cast<std::streamoff>(off));
      f.read(reinterpret_cast<char*>(h), sizeof h);
      Check(f.good() && std::memcmp(h, "LBPR", 4) == 0, "pack record header not found");
      std::uint32_t stored = 0;
      std::memcpy(&stored, h + 60, 4);  // little-endian host
      if (h[5] == 1 && std::memcmp(h + 8, key.bytes.data(), 16) == 0) {
        const auto at = static_cast<std::streamoff>(off + 68 + stored / 2);
        char c;
        f.seekg(at);
        f.read(&c, 1);
        c = static_cast<char>(c ^ 0x5a);
        f.seekp(at);
        f.write(&c, 1);
        Check(f.good(), "flipping a byte in " + e.path().string());
        return true;
      }
      off += 68 + stored;
    }
  }
  return false;
}

// Whether [off, off + len) of the file is all data (no hole).
bool RangePresent(int fd, std::uint64_t off, std::uint64_t len) {
  const off_t d = ::lseek(fd, static_cast<off_t>(off), SEEK_DATA);
  if (d != static_cast<off_t>(off)) return false;
  const off_t h = ::lseek(fd, d, SEEK_HOLE);
  return h >= static_cast<off_t>(off + len);
}

std::uint64_t DataBytes(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  Check(static_cast<bool>(fd), "open " + path);
  std::uint64_t total = 0;
  off_t pos = 0;
  for (;;) {
    const off_t d = ::lseek(fd.get(), pos, SEEK_DATA);
    if (d < 0) break;  // ENXIO: no data after pos
    const off_t h = ::lseek(fd.get(), d, SEEK_HOLE);
    total += static_cast<std::uint64_t>(h - d);
    pos = h;
  }
  return total;
}

std::set<std::string> ListDir(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().string());
  return out;
}

// GET /metrics from the daemon; empty on any failure.
std::string Scrape(int port) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "";
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::write(s.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) return "";
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(s.get(), buf, sizeof buf)) > 0;) out.append(buf, n);
  return out;
}

// Sum of the samples of `name` whose labels contain every one of `labels` (exposition text).
double Sample(const std::string& text, const std::string& name,
              const std::vector<std::string>& labels) {
  std::istringstream in(text);
  double sum = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') continue;
    bool all = true;
    for (const auto& l : labels) all &= line.find(l) != std::string::npos;
    if (all) sum += std::strtod(line.substr(line.rfind(' ') + 1).c_str(), nullptr);
  }
  return sum;
}

struct Blob {
  std::string id;
  std::string image;
  std::shared_ptr<const BlobMap> map;
};

int Run(int argc, char** argv) {
  if (argc < 4) Die("usage: daemon_workload METRICS_PORT EXPECT_JSON SERVE_SECONDS [LAZYBLOBD]");
  const int metrics_port = std::atoi(argv[1]);
  const std::string expect_path = argv[2];
  const int serve_seconds = std::atoi(argv[3]);
  const char* env_bin = std::getenv("LAZYBLOBD_BIN");
  const std::string daemon_bin = argc > 4 ? argv[4] : (env_bin != nullptr ? env_bin : "");
  Check(metrics_port > 0 && !daemon_bin.empty(), "need a metrics port and a lazyblobd binary");

  // O_DIRECT cache files: /var/tmp is disk-backed where /tmp may be tmpfs.
  char tmpl[] = "/var/tmp/lazyblob-daemon-workload-XXXXXX";
  Check(::mkdtemp(tmpl) != nullptr, "mkdtemp");
  const std::string dir = tmpl;
  g_dir = dir;
  fs::create_directories(dir + "/cache");

  // --- Store: A, B (shares A's first MiB), C (to be corrupted). Default (CDC) chunker.
  std::mt19937_64 rng(6);
  std::vector<char> a = RandomBytes(rng, (3u << 20) + 12345);
  std::vector<char> b(a.begin(), a.begin() + (1u << 20));
  std::vector<char> b_tail = RandomBytes(rng, (3u << 19) + 777);
  b.insert(b.end(), b_tail.begin(), b_tail.end());
  std::vector<char> c = RandomBytes(rng, (1u << 20) + 4321);
  std::vector<Blob> blobs = {{"blob-a", dir + "/a.img", nullptr},
                             {"blob-b", dir + "/b.img", nullptr},
                             {"blob-c", dir + "/c.img", nullptr}};
  WriteFile(blobs[0].image, a);
  WriteFile(blobs[1].image, b);
  WriteFile(blobs[2].image, c);
  const std::string store_dir = dir + "/store";
  StoreStats store_stats;
  {
    ChunkStoreOptions so;
    so.path = store_dir;
    so.writable = true;
    so.create_if_missing = true;
    auto store = ChunkStore::Open(so);
    Check(store.ok(), "store: " + store.status().ToString());
    for (auto& blob : blobs) {
      ImportOptions io;
      io.id = blob.id;
      auto r = (*store)->ImportBlob(blob.image, io);
      Check(r.ok(), "import " + blob.id + ": " + r.status().ToString());
      auto m = (*store)->OpenBlob(blob.id);
      Check(m.ok(), "map of " + blob.id + ": " + m.status().ToString());
      blob.map = m->map;
    }
  }
  // The corrupt chunk: one in the middle of C, not its first (read as the clean part).
  const BlobMap& cmap = *blobs[2].map;
  Check(cmap.extents.size() >= 4, "blob C has too few chunks");
  const ChunkExtent bad = cmap.extents[cmap.extents.size() / 2];
  Check(CorruptChunkRecord(store_dir, bad.key), "corrupt chunk record not found in the packs");
  {
    ChunkStoreOptions so;
    so.path = store_dir;
    auto store = ChunkStore::Open(so);
    Check(store.ok(), "reopen store: " + store.status().ToString());
    auto v = (*store)->Verify(blobs[2].id);
    Check(v.ok() && v->corrupt.size() == 1 && v->corrupt[0].key == bad.key,
          "verify does not report exactly the flipped chunk");
    auto st = (*store)->Stats();
    Check(st.ok(), "store stats: " + st.status().ToString());
    store_stats = *st;
  }

  // --- Simulator + the real daemon.
  KernelSimulatorOptions ko;
  ko.cache_dir = dir + "/cache";
  auto sim_or = KernelSimulator::Open(ko);
  Check(sim_or.ok(), "simulator: " + sim_or.status().ToString());
  std::unique_ptr<KernelSimulator> sim = std::move(*sim_or);
  Check(sim->Listen(dir + "/sim.sock").ok(), "simulator listen");
  std::vector<std::string> args = {daemon_bin,
                                   "--store",
                                   store_dir,
                                   "--sim-socket",
                                   dir + "/sim.sock",
                                   "--write-ahead",
                                   "0",
                                   "--metrics-listen",
                                   "127.0.0.1:" + std::to_string(metrics_port),
                                   "--log-level",
                                   "warn"};
  const pid_t pid = ::fork();
  Check(pid >= 0, "fork");
  if (pid == 0) {
    std::vector<char*> cargv;
    for (auto& s : args) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  g_daemon_pid = pid;
  for (int i = 0; i < 3000 && !sim->device_attached(); ++i) ::usleep(10'000);
  Check(sim->device_attached(), "lazyblobd did not attach to the simulator");

  // --- The workload. After each mount+read, note which chunks became data in its file.
  std::set<ChunkKey> loaded;  // keys the daemon's chunk cache holds (256 MiB: never evicts)
  std::uint64_t written = 0, store_hits = 0, cache_hits = 0;
  auto account = [&](const Blob& blob, const std::string& file) {
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    Check(static_cast<bool>(fd), "open cache file " + file);
    std::uint64_t bytes = 0;
    for (const ChunkExtent& e : blob.map->extents) {
      if (!RangePresent(fd.get(), e.blob_offset, AlignUp(e.length))) continue;
      bytes += AlignUp(e.length);
      if (loaded.insert(e.key).second) {
        ++store_hits;
      } else {
        ++cache_hits;
      }
    }
    Check(bytes == DataBytes(file), "cache file of " + blob.id + " has data outside whole chunks");
    written += bytes;
  };
  std::vector<SimMount> mounts;
  auto mount = [&](const Blob& blob) {
    const auto before = ListDir(ko.cache_dir);
    auto m = sim->Mount("erofs,workload", blob.id, blob.image);
    Check(m.ok(), "mount " + blob.id + ": " + m.status().ToString());
    Check(m->size == blob.map->size, "copen size of " + blob.id);
    std::string file;
    for (const auto& f : ListDir(ko.cache_dir)) {
      if (before.count(f) == 0) file = f;
    }
    Check(!file.empty(), "no cache file for " + blob.id);
    mounts.push_back(*m);
    return std::make_pair(*m, file);
  };
  auto read = [&](const SimMount& m, std::uint64_t off, std::uint64_t len) {
    std::vector<std::byte> buf(len);
    return sim->Read(m, off, buf);
  };
  {  // A: every byte, in 100000-byte reads (unaligned on purpose).
    auto [m, file] = mount(blobs[0]);
    for (std::uint64_t off = 0; off < m.size; off += 100'000) {
      auto r = read(m, off, 100'000);
      Check(r.ok(), "read A at " + std::to_string(off) + ": " + r.status().ToString());
    }
    account(blobs[0], file);
  }
  {  // B: its first 2 MiB (the first MiB is A's: those chunks come from the chunk cache).
    auto [m, file] = mount(blobs[1]);
    auto r = read(m, 0, 2u << 20);
    Check(r.ok() && *r == (2u << 20), "read B: " + r.status().ToString());
    account(blobs[1], file);
  }
  {  // An id the store does not have: the OPEN fails, the mount sees EIO.
    auto m = sim->Mount("erofs,workload", "no-such-blob");
    Check(!m.ok(), "mounting an unknown blob succeeded");
  }
  std::uint64_t failed_reads = 0, failed_read_bytes = 0;
  {  // C: its first block, then one block inside the corrupt chunk (alone in its READ).
    auto [m, file] = mount(blobs[2]);
    auto r = read(m, 0, 4096);
    Check(r.ok(), "read C's first block: " + r.status().ToString());
    const SimCounters before = sim->counters();
    r = read(m, bad.blob_offset, 4096);
    Check(!r.ok() && r.status().errno_value() == EIO,
          "read of C's corrupt chunk: want EIO, got " +
              (r.ok() ? std::string("ok") : r.status().ToString()));
    const SimCounters after = sim->counters();
    failed_reads = after.reads_sent - before.reads_sent;
    failed_read_bytes = after.read_bytes_requested - before.read_bytes_requested;
    Check(failed_reads == 1 && failed_read_bytes == 4096, "the corrupt READ was not one block");
    account(blobs[2], file);
  }
  // lazyblob_open_blob{blob} exists only while a blob is open, which is too short for a
  // 1 s scrape interval: check it on the daemon's own endpoint before unmounting.
  {
    const std::string t = Scrape(metrics_port);
    Check(Sample(t, "lazyblob_open_objects", {}) == 3, "lazyblob_open_objects != 3:\n" + t);
    for (const auto& blob : blobs) {
      Check(Sample(t, "lazyblob_open_blob", {"blob=\"" + blob.id + "\""}) == 1,
            "lazyblob_open_blob{blob=\"" + blob.id + "\"} != 1 while mounted:\n" + t);
    }
  }
  for (const auto& m : mounts) Check(sim->Unmount(m).ok(), "unmount");
  const SimCounters sc = sim->counters();
  Check(sc.protocol_violations == 0 && sc.data_mismatches == 0 && sc.late_completions == 0,
        "simulator saw violations/mismatches/late completions");
  Check(sc.opens_sent == 4 && sc.closes_sent == 3, "OPEN/CLOSE counts");

  // The daemon counts a request after answering it: wait until it counted everything.
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    const std::string t = Scrape(metrics_port);
    const double reads = Sample(t, "lazyblob_read_latency_seconds_count", {});
    const double closes = Sample(t, "lazyblob_requests_total", {"op=\"close\""});
    const double in_flight = Sample(t, "lazyblob_requests_in_flight", {});
    if (!t.empty() && reads == static_cast<double>(sc.reads_sent) && closes == 3 &&
        in_flight == 0) {
      break;
    }
    Check(Clock::now() < deadline, "the daemon's /metrics never counted every request:\n" + t);
    ::usleep(50'000);
  }

  const std::uint64_t reads_ok = sc.reads_sent - failed_reads;
  const std::uint64_t requested_ok = sc.read_bytes_requested - failed_read_bytes;
  nlohmann::json checks = nlohmann::json::array();
  auto expect = [&](const std::string& query, double value, const std::string& why) {
    checks.push_back({{"query", query}, {"value", value}, {"why", why}});
  };
  const std::string w = "simulator: ";
  expect(R"(lazyblob_requests_total{op="open",result="ok"})", 3, "A, B and C mounted");
  expect(R"(lazyblob_requests_total{op="open",result="error"})", 1, "no-such-blob: ENOENT");
  expect(R"(sum(lazyblob_requests_total{op="open"}))", static_cast<double>(sc.opens_sent),
         w + "opens_sent");
  expect(R"(lazyblob_requests_total{op="read",result="ok"})", static_cast<double>(reads_ok),
         w + "reads_sent minus the one READ of the corrupt chunk");
  expect(R"(lazyblob_requests_total{op="read",result="error"})", static_cast<double>(failed_reads),
         "the READ of the corrupt chunk");
  expect(R"(sum(lazyblob_requests_total{op="read",result="dropped"}) or vector(0))", 0,
         "every READ was for an open object");
  expect(R"(lazyblob_requests_total{op="close",result="ok"})", static_cast<double>(sc.closes_sent),
         w + "closes_sent");
  expect("lazyblob_read_latency_seconds_count", static_cast<double>(sc.reads_sent),
         "every READ (ok or error) is timed");
  expect("lazyblob_read_requested_bytes_total", static_cast<double>(sc.read_bytes_requested),
         w + "read_bytes_requested (sum of READ lengths)");
  expect("lazyblob_written_bytes_total", static_cast<double>(written),
         "data in the cache files, whole chunks only (each chunk is written once)");
  expect("lazyblob_written_ahead_bytes_total", static_cast<double>(written - requested_ok),
         "written minus the bytes of the successful READs: with --write-ahead 0 and one "
         "reader, every READ covers holes only and the chunks written during it cover it");
  expect(R"(lazyblob_chunk_lookups_total{result="store_hit"})", static_cast<double>(store_hits),
         "chunks written whose key was not loaded before");
  expect(R"(sum(lazyblob_chunk_lookups_total{result="cache_hit"}) or vector(0))",
         static_cast<double>(cache_hits),
         "chunks written whose key was loaded before (B's A part)");
  expect(R"(lazyblob_chunk_lookups_total{result="corrupt"})", 1,
         "the flipped chunk, looked up by one READ (failed loads are not cached)");
  expect(R"(sum(lazyblob_chunk_lookups_total{result="missing"}) or vector(0))", 0,
         "no chunk is missing from the index");
  expect("lazyblob_decompressions_total", static_cast<double>(store_hits),
         "one per successful store read");
  expect("lazyblob_open_objects", 0, "everything unmounted");
  expect("sum(lazyblob_open_blob) or vector(0)", 0, "everything unmounted");
  expect("lazyblob_requests_in_flight", 0, "idle");
  expect("lazyblob_queue_depth", 0, "idle");
  expect("lazyblob_malformed_messages_total", 0, "the simulator speaks the protocol");
  expect("lazyblob_worker_restarts_total", 0, "the worker never died");
  expect("lazyblob_restores_total", 0, "the worker never died");
  expect("lazyblob_build_info", 1, "always 1");
  expect("lazyblob_store_blobs", static_cast<double>(store_stats.blobs), "the store's Stats()");
  expect("lazyblob_store_logical_bytes", static_cast<double>(store_stats.logical_bytes),
         "the store's Stats()");
  expect("lazyblob_store_unique_bytes", static_cast<double>(store_stats.unique_bytes),
         "the store's Stats()");
  expect("lazyblob_store_stored_bytes", static_cast<double>(store_stats.stored_bytes),
         "the store's Stats()");
  nlohmann::json out = {
      {"done_unix_s",
       std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()},
      {"daemon_pid", pid},
      {"simulator",
       {{"opens_sent", sc.opens_sent},
        {"reads_sent", sc.reads_sent},
        {"read_bytes_requested", sc.read_bytes_requested},
        {"reads_completed", sc.reads_completed},
        {"closes_sent", sc.closes_sent},
        {"eios", sc.eios}}},
      {"checks", checks}};
  {
    std::ofstream f(expect_path + ".tmp");
    f << out.dump(2) << "\n";
    Check(f.good(), "writing " + expect_path);
  }
  fs::rename(expect_path + ".tmp", expect_path);
  std::printf("%s\n", out.dump(2).c_str());
  std::fflush(stdout);

  // Serve (for the scrapes) until told to stop, then a clean SIGTERM.
  const auto serve_until = Clock::now() + std::chrono::seconds(serve_seconds);
  while (!fs::exists(expect_path + ".stop") && Clock::now() < serve_until) ::usleep(100'000);
  Check(::waitpid(pid, nullptr, WNOHANG) == 0, "lazyblobd exited while serving");
  Check(::kill(pid, SIGTERM) == 0, "SIGTERM lazyblobd");
  int status = 0;
  Check(::waitpid(pid, &status, 0) == pid, "waitpid lazyblobd");
  g_daemon_pid = -1;
  Check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "lazyblobd did not exit 0 on SIGTERM (wait status " + std::to_string(status) + ")");
  std::printf("lazyblobd exited 0 on SIGTERM\n");
  sim.reset();
  fs::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace lazyblob

int main(int argc, char** argv) { return lazyblob::Run(argc, argv); }
