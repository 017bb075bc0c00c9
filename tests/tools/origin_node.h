// Test-only: one "node" of the origin tests: a KernelSimulator with its own cache dir and a
// real lazyblobd process serving it with `--origin`, its own origin cache and a metrics
// endpoint; plus helpers that talk to the registries registry_env.sh started.
#ifndef LAZYBLOB_TESTS_TOOLS_ORIGIN_NODE_H_
#define LAZYBLOB_TESTS_TOOLS_ORIGIN_NODE_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/unique_fd.h"
#include "tests/disk_temp_dir.h"
#include "transport/kernel_simulator.h"

namespace lazyblob::testing {

inline std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// Sum of the samples of `name` whose labels contain every one of `labels` (exposition text).
inline double Sample(const std::string& text, const std::string& name,
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

// stdout of a shell command.
inline std::string Output(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  return out;
}

// LB_PROXY_SWITCH down (connections closed unanswered, or never answered with "hang") or up.
inline void SwitchDown(bool down, const std::string& mode = "") {
  const std::string file = Env("LB_PROXY_SWITCH_DOWN");
  if (down) {
    std::ofstream(file) << mode;
  } else {
    std::filesystem::remove(file);
  }
}

inline std::string Manifest(const std::string& registry, const std::string& tag) {
  const auto slash = registry.find('/', 7);
  return Output("curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' " +
                registry.substr(0, slash) + "/v2" + registry.substr(slash) + "/manifests/" + tag);
}

// Deletes the first bundle blob of blob `id` from the repository (a 404 for its chunks).
inline bool DeleteBundleOf(const std::string& registry, const std::string& id) {
  const auto m = nlohmann::json::parse(Manifest(registry, "lb-" + id), nullptr, false);
  if (m.is_discarded() || m["layers"].size() < 2) return false;
  const std::string digest = m["layers"][1]["digest"];
  const auto slash = registry.find('/', 7);
  const std::string url =
      registry.substr(0, slash) + "/v2" + registry.substr(slash) + "/blobs/" + digest;
  return std::system(("curl -sf -X DELETE " + url + " >/dev/null").c_str()) == 0 &&
         std::system(("curl -sf -I " + url + " >/dev/null").c_str()) != 0;
}

// Tags a manifest that is not a lazyblob artifact (no artifactType) as `tag`.
inline bool PutMalformedManifest(const std::string& registry, const std::string& tag) {
  const std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":)"
      R"("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},)"
      R"("layers":[]})";
  const auto slash = registry.find('/', 7);
  const std::string url =
      registry.substr(0, slash) + "/v2" + registry.substr(slash) + "/manifests/" + tag;
  return std::system(
             ("curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json'"
              " --data '" +
              body + "' " + url + " >/dev/null")
                 .c_str()) == 0;
}

inline int FreePort() {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return -1;
  }
  return ntohs(a.sin_port);
}

class OriginNode {
 public:
  OriginNode(std::string dir, std::string origin, std::vector<std::string> extra)
      : dir_(std::move(dir)), origin_(std::move(origin)), extra_(std::move(extra)) {
    std::filesystem::create_directories(dir_ + "/cache");
    origin_cache_ = dir_ + "/origin";
  }
  ~OriginNode() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  void set_max_readahead(std::uint32_t bytes) { max_readahead_ = bytes; }
  void ReuseCacheOf(const OriginNode& other) { origin_cache_ = other.origin_cache_; }
  const std::string& dir() const { return dir_; }
  KernelSimulator& sim() { return *sim_; }

  bool Start() {
    KernelSimulatorOptions ko;
    ko.cache_dir = dir_ + "/cache";
    ko.reply_timeout_ms = 60'000;
    ko.max_readahead_bytes = max_readahead_;
    auto sim = KernelSimulator::Open(ko);
    if (!sim.ok() || !(*sim)->Listen(dir_ + "/sim.sock").ok()) return false;
    sim_ = std::move(*sim);
    port_ = FreePort();
    std::vector<std::string> args = {LAZYBLOBD_BIN,
                                     "--sim-socket",
                                     dir_ + "/sim.sock",
                                     "--origin",
                                     origin_,
                                     "--origin-cache",
                                     origin_cache_,
                                     "--threads",
                                     "8",
                                     "--log-level",
                                     "info",
                                     "--metrics-listen",
                                     "127.0.0.1:" + std::to_string(port_)};
    args.insert(args.end(), extra_.begin(), extra_.end());
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      const std::string log = dir_ + "/daemon.log";
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 3000 && !sim_->device_attached(); ++i) ::usleep(10'000);
    for (int i = 0; i < 1000 && Scrape().empty(); ++i) ::usleep(10'000);
    return sim_->device_attached() && !Scrape().empty();
  }

  // SIGTERM; the daemon must exit 0.
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << dir_ << ": " << status;
    sim_.reset();
  }

  SimMount Mount(const std::string& id, const std::string& image) {
    auto m = sim_->Mount("erofs,d", id, image);
    EXPECT_TRUE(m.ok()) << id << ": " << m.status().ToString() << "\n" << Log();
    return m.ok() ? *m : SimMount{};
  }

  // Reads the whole blob in `piece`-byte reads; the number of failed reads.
  int ReadAll(const SimMount& m, std::size_t piece) {
    std::vector<std::byte> buf(piece);
    int failed = 0;
    for (std::uint64_t off = 0; off < m.size; off += piece) failed += !sim_->Read(m, off, buf).ok();
    return failed;
  }

  void ExpectCleanReads() {
    for (const auto& v : sim_->violations()) ADD_FAILURE() << dir_ << ": violation: " << v;
    EXPECT_EQ(sim_->counters().data_mismatches, 0u) << dir_;
    EXPECT_EQ(sim_->counters().eios, 0u) << dir_ << "\n" << Log();
  }

  pid_t WorkerPid() {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) +
                     "/children");
    pid_t child = -1;
    in >> child;
    return child;
  }

  std::string Scrape() const {
    return Output("curl -sf http://127.0.0.1:" + std::to_string(port_) + "/metrics");
  }
  // Scrapes until the origin's chunk and request counters stay put for 0.3 s (write-ahead
  // windows go on after their READs are answered); the last scrape.
  std::string Settled() const {
    std::string last = Scrape(), now;
    auto key = [](const std::string& m) {
      return Sample(m, "lazyblob_origin_chunks_total", {}) +
             1e6 * Sample(m, "lazyblob_origin_requests_total", {});
    };
    for (int i = 0; i < 200; ++i, last = now) {
      ::usleep(300'000);
      now = Scrape();
      if (key(now) == key(last)) return now;
    }
    return now;
  }
  std::string Log() const {
    std::ifstream in(dir_ + "/daemon.log");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  bool LogHas(const std::string& text) const { return Log().find(text) != std::string::npos; }

  // Whether any cache file holds data in [off, off + len).
  bool CacheFileHasData(std::uint64_t off, std::uint64_t len) const {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/cache")) {
      if (!e.is_regular_file()) continue;
      UniqueFd fd(::open(e.path().c_str(), O_RDONLY | O_CLOEXEC));
      const off_t d = ::lseek(fd.get(), static_cast<off_t>(off), SEEK_DATA);
      if (d >= 0 && static_cast<std::uint64_t>(d) < off + len) return true;
    }
    return false;
  }

 private:
  const std::string dir_, origin_;
  const std::vector<std::string> extra_;
  std::string origin_cache_;
  std::uint32_t max_readahead_ = 128 * 1024;
  std::unique_ptr<KernelSimulator> sim_;
  pid_t pid_ = -1;
  int port_ = -1;
};

}  // namespace lazyblob::testing

#endif  // LAZYBLOB_TESTS_TOOLS_ORIGIN_NODE_H_
