// The read benchmark's engine run: a RequestEngine over a real ChunkStore (opened as the
// daemon opens it), serving a KernelSimulator through SimDevice, in this process. Reader
// threads read the whole blob through the simulator (one slice each, sequential or
// shuffled) with a fresh simulator cache dir (cold cache file) and a new engine (cold
// decompressed-chunk cache). Latencies are recorded from both views: the engine's (READ
// message read -> answered, EngineStats::RequestDone) and the reader's (one
// KernelSimulator::Read call, which may span several READs or none), and the engine's
// per-stage times (EngineStats::StageTime).
//
// Thread-safety: RunEngine runs on the calling thread and joins everything it starts.
// `store` is borrowed for the call.
#ifndef LAZYBLOB_BENCH_READ_BENCH_ENGINE_H_
#define LAZYBLOB_BENCH_READ_BENCH_ENGINE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/read_bench_util.h"
#include "core/engine_stats.h"
#include "core/status.h"
#include "store/chunk_store.h"

namespace lazyblob::bench {

struct EngineRunOptions {
  std::string blob_id;
  std::string cache_dir;  // created fresh; must not exist
  int worker_threads = 1;
  int reader_threads = 1;
  Pattern pattern = Pattern::kSequential;
  std::uint32_t read_bytes = 128 * 1024;  // simulator max_readahead_bytes and reader unit
  std::uint64_t chunk_cache_bytes = 256ull << 20;
  std::uint64_t write_ahead_bytes = 1ull << 20;
  std::uint64_t max_bytes = 0;  // read only the first max_bytes of the blob; 0 = all
  std::string verify_image;     // compare every byte served with this file ("" = no)
};

struct EngineRun {
  double seconds = 0;  // first Read call to last return, all reader threads
  std::uint64_t bytes = 0;
  std::vector<double> engine_read_seconds;  // per READ request (engine view)
  std::vector<double> reader_seconds;       // per KernelSimulator::Read call
  // Summed over worker threads (seconds inside the call):
  double source_read_chunk = 0;  // ChunkSource::ReadChunk: lookup+read+decompress+verify
  double device_complete = 0;    // CacheDevice::CompleteRead
  double device_receive = 0;     // CacheDevice::Read (dispatcher)
  // The engine's own per-stage timing (EngineStats::StageTime), indexed by Stage: seconds
  // summed over every thread, and the number of timed operations.
  std::array<double, kStageCount> stage_seconds{};
  std::array<std::uint64_t, kStageCount> stage_ops{};
  std::uint64_t reads_sent = 0, chunks_loaded = 0, cache_hits = 0;
  std::uint64_t bytes_written = 0, ahead_bytes = 0;
  // Minor page faults of the whole process while the readers ran (getrusage): mostly the
  // engine touching fresh memory for decompressed chunks.
  std::uint64_t minor_faults = 0;
};

Result<EngineRun> RunEngine(ChunkStore* store, const EngineRunOptions& options);

}  // namespace lazyblob::bench

#endif  // LAZYBLOB_BENCH_READ_BENCH_ENGINE_H_
