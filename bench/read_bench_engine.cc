#include "bench/read_bench_engine.h"

#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/engine_stats.h"
#include "core/request_engine.h"
#include "transport/kernel_simulator.h"
#include "transport/sim_device.h"

namespace lazyblob::bench {
namespace {

// Accumulates nanoseconds from many threads.
class Timer {
 public:
  void Add(Clock::time_point t0) {
    ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  }
  double seconds() const { return static_cast<double>(ns_.load()) * 1e-9; }

 private:
  std::atomic<std::int64_t> ns_{0};
};

// The store, timed.
class TimedSource final : public ChunkSource {
 public:
  explicit TimedSource(ChunkSource* s) : s_(s) {}
  Result<OpenedBlob> OpenBlob(std::string_view id) override { return s_->OpenBlob(id); }
  Status ReadChunk(const ChunkExtent& e, std::span<std::byte> out,
                   ChunkReadTimings* timings) override {
    const Clock::time_point t0 = Clock::now();
    Status st = s_->ReadChunk(e, out, timings);
    read_chunk.Add(t0);
    return st;
  }
  Timer read_chunk;

 private:
  ChunkSource* s_;
};

// The simulator's device, timed.
class TimedDevice final : public CacheDevice {
 public:
  explicit TimedDevice(CacheDevice* d) : d_(d) {}
  int poll_fd() const override { return d_->poll_fd(); }
  Result<std::optional<CacheMessage>> Read() override {
    const Clock::time_point t0 = Clock::now();
    auto r = d_->Read();
    receive.Add(t0);
    return r;
  }
  Status ReplyOpen(std::uint32_t id, std::int64_t size) override { return d_->ReplyOpen(id, size); }
  Status CompleteRead(int fd, std::uint32_t id) override {
    const Clock::time_point t0 = Clock::now();
    Status st = d_->CompleteRead(fd, id);
    complete.Add(t0);
    return st;
  }
  Status Restore() override { return d_->Restore(); }
  Timer receive, complete;

 private:
  CacheDevice* d_;
};

// Keeps READ latencies (a short mutex: fine for a benchmark, the engine's stats calls are
// one per request), counters and the per-stage times (relaxed atomic adds).
class BenchStats final : public EngineStats {
 public:
  void RequestDone(RequestOp op, RequestResult result, double seconds) override {
    if (op != RequestOp::kRead) return;
    if (result != RequestResult::kOk) failed++;
    std::lock_guard lock(mu_);
    read_seconds.push_back(seconds);
  }
  void BytesRequested(std::uint64_t) override {}
  void BytesWritten(std::uint64_t bytes, std::uint64_t ahead) override {
    written += bytes;
    ahead_bytes += ahead;
  }
  void ChunkLookup(ChunkLookupResult r) override {
    if (r == ChunkLookupResult::kCacheHit) cache_hits++;
    if (r == ChunkLookupResult::kStoreHit) loaded++;
  }
  void Decompressed(double) override {}
  void StageTime(Stage stage, double seconds) override {
    const int i = static_cast<int>(stage);
    if (i < 0 || i >= kStageCount) return;
    stage_ops[i].fetch_add(1, std::memory_order_relaxed);
    stage_ns[i].fetch_add(static_cast<std::int64_t>(seconds * 1e9), std::memory_order_relaxed);
  }
  void InFlight(int) override {}
  void QueueDepth(int) override {}
  void OpenObjects(int, std::string_view) override {}
  void MalformedMessage() override { failed++; }
  void DeviceReadPressure() override { failed++; }
  void WorkerRestart() override {}
  void Restored() override {}

  std::vector<double> Take() {
    std::lock_guard lock(mu_);
    return std::move(read_seconds);
  }
  std::atomic<std::uint64_t> failed{0}, written{0}, ahead_bytes{0}, cache_hits{0}, loaded{0};
  std::atomic<std::uint64_t> stage_ops[kStageCount] = {};
  std::atomic<std::int64_t> stage_ns[kStageCount] = {};

 private:
  std::mutex mu_;
  std::vector<double> read_seconds;
};

std::uint64_t MinorFaults() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<std::uint64_t>(ru.ru_minflt);
}

struct Readers {
  std::vector<std::vector<double>> latencies;
  std::string error;
};

// Reads the plan through the simulator with one thread per slice.
Readers ReadAll(KernelSimulator* sim, const SimMount& mount,
                const std::vector<std::vector<ReadOp>>& plan, std::uint32_t unit) {
  Readers r;
  r.latencies.resize(plan.size());
  std::mutex mu;
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < plan.size(); ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::byte> buf(unit);
      r.latencies[t].reserve(plan[t].size());
      for (const ReadOp& op : plan[t]) {
        const Clock::time_point t0 = Clock::now();
        auto n = sim->Read(mount, op.offset, std::span(buf).first(op.length));
        r.latencies[t].push_back(SecondsSince(t0));
        if (!n.ok() || *n != op.length) {
          std::lock_guard lock(mu);
          r.error = n.ok() ? "short read at " + std::to_string(op.offset) : n.status().ToString();
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  return r;
}

}  // namespace

Result<EngineRun> RunEngine(ChunkStore* store, const EngineRunOptions& o) {
  std::error_code ec;
  std::filesystem::create_directories(o.cache_dir, ec);
  if (ec) return IoError("mkdir " + o.cache_dir + ": " + ec.message());
  KernelSimulatorOptions so;
  so.cache_dir = o.cache_dir;
  so.max_readahead_bytes = o.read_bytes;
  LB_ASSIGN_OR_RETURN(auto sim, KernelSimulator::Open(so));
  LB_ASSIGN_OR_RETURN(UniqueFd dev_fd, sim->OpenDevice());
  LB_ASSIGN_OR_RETURN(auto sim_device, SimDevice::Adopt(std::move(dev_fd)));
  TimedDevice device(sim_device.get());
  TimedSource source(store);
  BenchStats stats;

  EngineOptions eo;  // as tools/lazyblobd_worker.cc sets it up
  eo.worker_threads = o.worker_threads;
  eo.write_ahead_bytes = o.write_ahead_bytes;
  eo.chunk_cache_bytes = o.chunk_cache_bytes;
  LB_ASSIGN_OR_RETURN(auto engine, RequestEngine::Start(eo, &device, &source, &stats));
  LB_ASSIGN_OR_RETURN(SimMount mount, sim->Mount("erofs,bench", o.blob_id, o.verify_image));

  const std::uint64_t size = o.max_bytes ? std::min(o.max_bytes, mount.size) : mount.size;
  auto plan = MakePlan(size, o.read_bytes, o.reader_threads, o.pattern);
  const std::uint64_t faults_before = MinorFaults();
  const Clock::time_point t0 = Clock::now();
  Readers readers = ReadAll(sim.get(), mount, plan, o.read_bytes);
  EngineRun run;
  run.seconds = SecondsSince(t0);
  run.minor_faults = MinorFaults() - faults_before;
  run.bytes = size;

  Status unmount = sim->Unmount(mount);
  engine->Stop();
  const SimCounters c = sim->counters();
  engine.reset();
  sim.reset();
  std::filesystem::remove_all(o.cache_dir, ec);

  if (!readers.error.empty()) return IoError("reader: " + readers.error);
  LB_RETURN_IF_ERROR(unmount);
  if (c.eios || c.protocol_violations || c.data_mismatches || stats.failed) {
    return Internal("simulator saw eios=" + std::to_string(c.eios) +
                    " violations=" + std::to_string(c.protocol_violations) +
                    " mismatches=" + std::to_string(c.data_mismatches) +
                    " failed=" + std::to_string(stats.failed.load()));
  }
  for (auto& l : readers.latencies) {
    run.reader_seconds.insert(run.reader_seconds.end(), l.begin(), l.end());
  }
  run.engine_read_seconds = stats.Take();
  run.source_read_chunk = source.read_chunk.seconds();
  run.device_complete = device.complete.seconds();
  run.device_receive = device.receive.seconds();
  run.reads_sent = c.reads_sent;
  run.chunks_loaded = stats.loaded;
  run.cache_hits = stats.cache_hits;
  run.bytes_written = stats.written;
  run.ahead_bytes = stats.ahead_bytes;
  for (int i = 0; i < kStageCount; ++i) {
    run.stage_seconds[i] = static_cast<double>(stats.stage_ns[i].load()) * 1e-9;
    run.stage_ops[i] = stats.stage_ops[i].load();
  }
  return run;
}

}  // namespace lazyblob::bench
