// Test doubles for the request engine: an in-memory ChunkSource whose chunks can be
// corrupted or held back, a scripted CacheDevice (an eventfd as poll_fd, a message queue,
// recorded replies) whose anon fds are real files in a temp dir on a real filesystem
// (O_DIRECT when the filesystem allows it), and an EngineStats that counts.
//
// Thread-safety: all doubles are thread-safe like the interfaces they implement.
#ifndef LAZYBLOB_TESTS_CORE_ENGINE_TEST_DOUBLES_H_
#define LAZYBLOB_TESTS_CORE_ENGINE_TEST_DOUBLES_H_

#include <fcntl.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "core/access_trace.h"
#include "core/aligned_buffer.h"
#include "core/cache_device.h"
#include "core/chunk_source.h"
#include "core/engine_stats.h"
#include "tests/disk_temp_dir.h"

namespace lazyblob::testing {

using Bytes = std::vector<std::byte>;

inline Bytes PatternBytes(std::size_t size, std::uint32_t seed) {
  Bytes b(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& v : b) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v = static_cast<std::byte>(x);
  }
  return b;
}

// Records shared by the nodes of a test (standing in for a registry, or a store's traces/).
class MemoryTraceStore final : public AccessTraceStore {
 public:
  Result<AccessTrace> Load(std::string_view blob_id) override {
    std::lock_guard lock(mu_);
    auto it = traces_.find(std::string(blob_id));
    if (it == traces_.end()) return NotFound("no record");
    return it->second;
  }
  Status Save(std::string_view blob_id, const AccessTrace& trace) override {
    std::lock_guard lock(mu_);
    traces_[std::string(blob_id)] = trace;
    return Status();
  }

 private:
  std::mutex mu_;
  std::map<std::string, AccessTrace> traces_;
};

class FakeChunkSource final : public ChunkSource {
 public:
  // Adds a chunk to the pool; equal contents give equal keys.
  ChunkKey AddChunk(const Bytes& content) {
    ChunkKey key;
    std::uint64_t h1 = 1469598103934665603ull, h2 = 7809847782465536322ull;
    for (std::byte b : content) {
      h1 = (h1 ^ static_cast<std::uint8_t>(b)) * 1099511628211ull;
      h2 = (h2 ^ static_cast<std::uint8_t>(b)) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
    std::memcpy(key.bytes.data(), &h1, 8);
    std::memcpy(key.bytes.data() + 8, &h2, 8);
    std::lock_guard lock(mu_);
    chunks_[key] = content;
    return key;
  }

  // A blob made of pooled chunks in order; all but the last must be whole 4 KiB blocks.
  void AddBlob(const std::string& id, const std::vector<ChunkKey>& keys) {
    auto map = std::make_shared<BlobMap>();
    map->id = id;
    std::lock_guard lock(mu_);
    for (const ChunkKey& k : keys) {
      const auto len = static_cast<std::uint32_t>(chunks_.at(k).size());
      map->extents.push_back(ChunkExtent{map->size, len, k});
      map->size += len;
    }
    blobs_[id] = std::move(map);
  }

  Bytes BlobBytes(const std::string& id) {
    std::lock_guard lock(mu_);
    Bytes out;
    for (const ChunkExtent& e : blobs_.at(id)->extents) {
      const Bytes& c = chunks_.at(e.key);
      out.insert(out.end(), c.begin(), c.end());
    }
    return out;
  }
  std::shared_ptr<const BlobMap> Map(const std::string& id) {
    std::lock_guard lock(mu_);
    return blobs_.at(id);
  }

  void Corrupt(const ChunkKey& key) {
    std::lock_guard lock(mu_);
    corrupt_[key] = true;
  }
  // ReadChunk of `key` throws std::bad_alloc (an allocation failure deep in a source).
  void ThrowOn(const ChunkKey& key) {
    std::lock_guard lock(mu_);
    throw_[key] = true;
  }
  int reads(const ChunkKey& key) {
    std::lock_guard lock(mu_);
    return reads_[key];
  }
  int total_reads() {
    std::lock_guard lock(mu_);
    int n = 0;
    for (auto& [k, v] : reads_) n += v;
    return n;
  }
  // While held, ReadChunk blocks (after counting the call) until Release().
  void Hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void Release() {
    {
      std::lock_guard lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  int blocked() {
    std::lock_guard lock(mu_);
    return blocked_;
  }
  void set_read_delay(std::chrono::microseconds d) { delay_us_ = d.count(); }
  // Burns CPU instead of sleeping (a decompression stand-in), per ReadChunk.
  void set_spin(std::chrono::microseconds d) { spin_us_ = d.count(); }

  // Runs at the start of every OpenBlob, outside the double's lock (tests that order it).
  void set_open_hook(std::function<void()> hook) {
    std::lock_guard lock(mu_);
    open_hook_ = std::move(hook);
  }
  Result<OpenedBlob> OpenBlob(std::string_view blob_id) override {
    std::function<void()> hook;
    {
      std::lock_guard lock(mu_);
      hook = open_hook_;
    }
    if (hook) hook();
    std::lock_guard lock(mu_);
    auto it = blobs_.find(std::string(blob_id));
    if (it == blobs_.end()) return NotFound("blob '" + std::string(blob_id) + "' not found");
    ++opens_;
    return OpenedBlob{it->second, std::make_shared<OpenHold>(this, it->first)};
  }
  // Holds OpenBlob handed out and not yet released.
  int holds() const { return holds_.load(); }

  // Added to the caller's ChunkReadTimings by every ReadChunk (a source that reports its
  // split); zero (the default): the source reports nothing.
  void set_reported_timings(const ChunkReadTimings& t) {
    std::lock_guard lock(mu_);
    reported_ = t;
  }

  // Runs announced by WillRead, in order.
  std::vector<std::vector<ChunkKey>> hints() {
    std::lock_guard lock(mu_);
    return hints_;
  }
  void WillRead(std::span<const ChunkExtent> extents) override {
    std::vector<ChunkKey> keys;
    for (const ChunkExtent& e : extents) keys.push_back(e.key);
    std::lock_guard lock(mu_);
    hints_.push_back(std::move(keys));
  }

  // FetchAhead calls: the keys hinted, the bandwidth, and the hold handed out (expired once
  // the caller dropped it).
  struct AheadCall {
    std::vector<ChunkKey> keys;
    std::uint64_t bytes_per_second = 0;
    std::weak_ptr<void> hold;
  };
  std::vector<AheadCall> ahead_calls() {
    std::lock_guard lock(mu_);
    return ahead_calls_;
  }
  std::shared_ptr<void> FetchAhead(std::span<const ChunkExtent> extents,
                                   std::uint64_t bytes_per_second) override {
    AheadCall call;
    for (const ChunkExtent& e : extents) call.keys.push_back(e.key);
    call.bytes_per_second = bytes_per_second;
    auto hold = std::make_shared<int>(0);
    call.hold = hold;
    std::lock_guard lock(mu_);
    ahead_calls_.push_back(std::move(call));
    return hold;
  }

  using ChunkSource::ReadChunk;
  Status ReadChunk(const ChunkExtent& extent, std::span<std::byte> out,
                   ChunkReadTimings* timings) override {
    if (timings != nullptr) {
      std::lock_guard lock(mu_);
      timings->lookup += reported_.lookup;
      timings->read += reported_.read;
      timings->decompress += reported_.decompress;
      timings->verify += reported_.verify;
    }
    Bytes content;
    {
      std::unique_lock lock(mu_);
      ++reads_[extent.key];
      ++blocked_;
      cv_.wait(lock, [&] { return !held_; });
      --blocked_;
      auto it = chunks_.find(extent.key);
      if (it == chunks_.end()) return NotFound("chunk " + extent.key.ToHex() + " missing");
      if (corrupt_[extent.key]) return Corruption("chunk " + extent.key.ToHex() + " corrupt");
      if (throw_[extent.key]) throw std::bad_alloc();
      content = it->second;
    }
    if (delay_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us_.load()));
    if (spin_us_ > 0) {
      const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
      while (std::chrono::steady_clock::now() < end) {
      }
    }
    if (out.size() < AlignUp(content.size())) return Internal("ReadChunk buffer too small");
    std::memcpy(out.data(), content.data(), content.size());
    std::memset(out.data() + content.size(), 0, AlignUp(content.size()) - content.size());
    return Status();
  }

 private:
  // OpenBlob's hold: counts itself while it lives (a lease in the real store).
  struct OpenHold {
    OpenHold(FakeChunkSource* s, std::string id) : source(s), blob_id(std::move(id)) {
      ++source->holds_;
    }
    ~OpenHold() { --source->holds_; }
    FakeChunkSource* source;
    std::string blob_id;
  };

  int opens_ = 0;
  std::atomic<int> holds_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<ChunkKey, Bytes> chunks_;
  std::map<ChunkKey, bool> corrupt_;
  std::map<ChunkKey, bool> throw_;
  std::vector<std::vector<ChunkKey>> hints_;
  std::function<void()> open_hook_;
  std::vector<AheadCall> ahead_calls_;
  std::map<ChunkKey, int> reads_;
  std::map<std::string, std::shared_ptr<BlobMap>> blobs_;
  ChunkReadTimings reported_;
  bool held_ = false;
  int blocked_ = 0;
  std::atomic<long> delay_us_{0};
  std::atomic<long> spin_us_{0};
};

// Real files standing in for anon fds, in a temp dir on a real filesystem.
class CacheFileDir {
 public:
  CacheFileDir() {
    dir_ = MakeDiskTempDir("lazyblob-engine-test-");
    // O_DIRECT when the filesystem supports it, like the kernel's cache files.
    const std::string probe = dir_ + "/probe";
    int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
    direct_ = fd >= 0;
    if (fd >= 0) ::close(fd);
    ::unlink(probe.c_str());
  }
  ~CacheFileDir() { std::filesystem::remove_all(dir_); }

  // A cache file truncated to round_up(size, 4 KiB), as the kernel creates it.
  UniqueFd NewFile(const std::string& name, std::uint64_t size) {
    const std::string path = dir_ + "/" + name;
    const int flags = O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | (direct_ ? O_DIRECT : 0);
    UniqueFd fd(::open(path.c_str(), flags, 0600));
    if (fd && ::ftruncate(fd.get(), static_cast<off_t>(AlignUp(size))) != 0) fd.reset();
    return fd;
  }
  // What the file holds (holes read as zeros).
  Bytes Contents(const std::string& name) {
    const std::string path = dir_ + "/" + name;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    Bytes out;
    std::byte buf[65536];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
    return out;
  }
  // True when [off, off + len) holds data (what the kernel checks after a completion).
  bool Present(const std::string& name, std::uint64_t off, std::uint64_t len) {
    const std::string path = dir_ + "/" + name;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    const off_t hole = ::lseek(fd.get(), static_cast<off_t>(off), SEEK_HOLE);
    return hole >= 0 && static_cast<std::uint64_t>(hole) >= off + len;
  }
  bool direct() const { return direct_; }

 private:
  std::string dir_;
  bool direct_ = false;
};

class ScriptedDevice final : public CacheDevice {
 public:
  ScriptedDevice() : event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  void Push(CacheMessage m) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(m));
    const std::uint64_t one = 1;
    (void)!::write(event_.get(), &one, sizeof one);
  }
  void PushMalformed() {
    std::lock_guard lock(mu_);
    ++malformed_;
    const std::uint64_t one = 1;
    (void)!::write(event_.get(), &one, sizeof one);
  }
  // The next `times` reads fail with `s` (then reads go on).
  void FailReads(Status s, int times) {
    std::lock_guard lock(mu_);
    transient_failure_ = std::move(s);
    transient_failures_ = times;
    const std::uint64_t one = 1;
    (void)!::write(event_.get(), &one, sizeof one);
  }
  void Fail(Status s) {
    std::lock_guard lock(mu_);
    failure_ = std::move(s);
    const std::uint64_t one = 1;
    (void)!::write(event_.get(), &one, sizeof one);
  }

  int poll_fd() const override { return event_.get(); }

  Result<std::optional<CacheMessage>> Read() override {
    std::lock_guard lock(mu_);
    if (!failure_.ok()) return failure_;
    if (transient_failures_ > 0) {
      --transient_failures_;
      return transient_failure_;
    }
    if (malformed_ > 0) {
      --malformed_;
      return Malformed("scripted malformed message");
    }
    if (queue_.empty()) {
      std::uint64_t v;
      (void)!::read(event_.get(), &v, sizeof v);
      return std::optional<CacheMessage>();
    }
    CacheMessage m = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    ++delivered_;
    return std::optional<CacheMessage>(std::move(m));
  }

  Status ReplyOpen(std::uint32_t msg_id, std::int64_t size) override {
    std::lock_guard lock(mu_);
    if (!open_replies_.emplace(msg_id, size).second) ++double_answers_;
    cv_.notify_all();
    return Status();
  }
  Status CompleteRead(int anon_fd, std::uint32_t msg_id) override {
    std::lock_guard lock(mu_);
    if (::fcntl(anon_fd, F_GETFD) < 0) ++bad_fd_completions_;
    if (++completions_[msg_id] > 1) ++double_answers_;
    cv_.notify_all();
    return Status();
  }
  Status Restore() override {
    std::lock_guard lock(mu_);
    ++restores_;
    return Status();
  }

  std::optional<std::int64_t> WaitOpen(std::uint32_t msg_id) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kGuard, [&] { return open_replies_.count(msg_id) != 0; })) {
      return std::nullopt;
    }
    return open_replies_.at(msg_id);
  }
  bool WaitComplete(std::uint32_t msg_id) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kGuard, [&] { return completions_.count(msg_id) != 0; });
  }
  // Waits until the engine has read every pushed message.
  bool WaitDrained() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kGuard, [&] { return queue_.empty(); });
  }
  int completions(std::uint32_t msg_id) {
    std::lock_guard lock(mu_);
    auto it = completions_.find(msg_id);
    return it == completions_.end() ? 0 : it->second;
  }
  std::size_t completed_total() {
    std::lock_guard lock(mu_);
    return completions_.size();
  }
  int delivered() {
    std::lock_guard lock(mu_);
    return delivered_;
  }
  int double_answers() {
    std::lock_guard lock(mu_);
    return double_answers_;
  }
  int bad_fd_completions() {
    std::lock_guard lock(mu_);
    return bad_fd_completions_;
  }
  int restores() {
    std::lock_guard lock(mu_);
    return restores_;
  }
  std::size_t answered_total() {
    std::lock_guard lock(mu_);
    return completions_.size() + open_replies_.size();
  }

  // Generous guard against a hung test; never a performance threshold.
  static constexpr std::chrono::seconds kGuard{60};

 private:
  Status transient_failure_;
  int transient_failures_ = 0;
  UniqueFd event_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<CacheMessage> queue_;
  int malformed_ = 0;
  Status failure_;
  int delivered_ = 0;
  std::map<std::uint32_t, std::int64_t> open_replies_;
  std::map<std::uint32_t, int> completions_;
  int double_answers_ = 0;
  int bad_fd_completions_ = 0;
  int restores_ = 0;
};

class CountingStats final : public EngineStats {
 public:
  void RequestDone(RequestOp op, RequestResult r, double) override {
    ++done[static_cast<int>(op)][static_cast<int>(r)];
  }
  void BytesRequested(std::uint64_t b) override { requested += b; }
  void BytesWritten(std::uint64_t b, std::uint64_t ahead) override {
    // Failure injection: an exception thrown in the middle of a fill, after a write.
    if (throw_on_bytes_written.fetch_sub(1) == 1) throw std::bad_alloc();
    written += b;
    written_ahead += ahead;
  }
  void ChunkLookup(ChunkLookupResult r) override { ++lookups[static_cast<int>(r)]; }
  void Decompressed(double seconds) override {
    ++decompressed;
    decompress_seconds += seconds;
  }
  void StageTime(Stage stage, double seconds) override {
    ++stage_ops[static_cast<int>(stage)];
    stage_seconds[static_cast<int>(stage)] += seconds;
  }
  void InFlight(int d) override { in_flight += d; }
  void QueueDepth(int d) override { queue_depth += d; }
  void OpenObjects(int d, std::string_view) override { open_objects += d; }
  void MalformedMessage() override { ++malformed; }
  void DeviceReadPressure() override { ++read_pressure; }
  void WorkerRestart() override {}
  void Restored() override { ++restored; }
  void PrefetchWritten(std::uint64_t b) override { prefetch_bytes += b; }
  void PrefetchHit() override { ++prefetch_hits; }
  void PrefetchWasted(std::uint64_t b) override { prefetch_wasted += b; }
  void ReplayDone(double seconds) override {
    replay_seconds += seconds;
    ++replays;
  }
  void TraceRecorded() override { ++traces_recorded; }

  std::atomic<std::uint64_t> prefetch_bytes{0}, prefetch_wasted{0};
  std::atomic<int> prefetch_hits{0}, replays{0}, traces_recorded{0};
  std::atomic<double> replay_seconds{0};
  std::atomic<int> done[3][3] = {};
  std::atomic<std::uint64_t> requested{0}, written{0}, written_ahead{0};
  std::atomic<int> lookups[4] = {};
  std::atomic<int> decompressed{0}, in_flight{0}, queue_depth{0}, open_objects{0};
  std::atomic<double> decompress_seconds{0};
  std::atomic<int> stage_ops[kStageCount] = {};
  std::atomic<double> stage_seconds[kStageCount] = {};
  std::atomic<int> malformed{0}, restored{0}, read_pressure{0};
  // > 0: the n-th BytesWritten call from now throws std::bad_alloc.
  std::atomic<int> throw_on_bytes_written{0};
};

}  // namespace lazyblob::testing

#endif  // LAZYBLOB_TESTS_CORE_ENGINE_TEST_DOUBLES_H_
