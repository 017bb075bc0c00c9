// EngineStats: what the request engine reports about its work. metrics/ implements it
// with prometheus-cpp; core/ and tests use NullEngineStats. No implementation may block:
// these are called on the READ path.
//
// Thread-safety: implementations must be safe to call from any thread at once.
#ifndef LAZYBLOB_CORE_ENGINE_STATS_H_
#define LAZYBLOB_CORE_ENGINE_STATS_H_

#include <cstdint>
#include <string_view>

namespace lazyblob {

enum class RequestOp : int { kOpen = 0, kRead = 1, kClose = 2 };
// ok: answered with data/size; error: answered with a failure (EIO/ENOENT);
// dropped: could not be answered (e.g. READ for an unknown object).
enum class RequestResult : int { kOk = 0, kError = 1, kDropped = 2 };
enum class ChunkLookupResult : int { kCacheHit = 0, kStoreHit = 1, kMissing = 2, kCorrupt = 3 };

// Where the time of serving READs goes, for EngineStats::StageTime. lookup (index lookup),
// read (pack pread), decompress and verify (hash check) split ChunkSource::ReadChunk, as
// the source reports them (ChunkReadTimings); write is one chunk's anon-fd write
// (WriteBlocks); complete is one READ's CacheDevice::CompleteRead.
enum class Stage : int {
  kLookup = 0,
  kRead = 1,
  kDecompress = 2,
  kVerify = 3,
  kWrite = 4,
  kComplete = 5,
};
inline constexpr int kStageCount = 6;

// "lookup", "read", "decompress", "verify", "write", "complete" (metric labels, JSON keys).
constexpr std::string_view StageName(Stage stage) {
  constexpr std::string_view kNames[kStageCount] = {"lookup", "read",  "decompress",
                                                    "verify", "write", "complete"};
  const int i = static_cast<int>(stage);
  return i >= 0 && i < kStageCount ? kNames[i] : std::string_view("unknown");
}

class EngineStats {
 public:
  virtual ~EngineStats() = default;

  // A request was answered; `seconds` from the message read to the answer.
  virtual void RequestDone(RequestOp op, RequestResult result, double seconds) = 0;
  virtual void BytesRequested(std::uint64_t bytes) = 0;
  // Bytes pwritten into cache files, and the part of them beyond what READs asked for.
  virtual void BytesWritten(std::uint64_t bytes, std::uint64_t ahead_bytes) = 0;
  virtual void ChunkLookup(ChunkLookupResult result) = 0;
  // A chunk was loaded from the store; `seconds` decompressing it (the whole
  // ChunkSource::ReadChunk when the source does not report its split).
  virtual void Decompressed(double seconds) = 0;
  // `seconds` spent in `stage`: lookup..verify once per chunk loaded from a source that
  // reports its split, write once per chunk written, complete once per READ answered.
  virtual void StageTime(Stage stage, double seconds) = 0;
  virtual void InFlight(int delta) = 0;
  virtual void QueueDepth(int delta) = 0;
  // An OPEN succeeded (+1) or its CLOSE released it (-1). `blob_id` is bounded by what
  // is open; implementations may ignore it.
  virtual void OpenObjects(int delta, std::string_view blob_id) = 0;
  virtual void MalformedMessage() = 0;
  // Reading the device failed for lack of resources (EMFILE, ENFILE, ENOMEM: the kernel could
  // not install an OPEN's anon fd and failed that OPEN); the engine backs off and reads on.
  virtual void DeviceReadPressure() = 0;
  virtual void WorkerRestart() = 0;
  virtual void Restored() = 0;

  // Access traces (CacheFiller). Bytes replay wrote into cache files; a demand request
  // whose chunks replay had all written already (a prefetch hit); bytes replay wrote that
  // no demand asked for before the file closed (wasted); one replay ended after `seconds`;
  // a start's record was saved. Optional: the defaults ignore them.
  virtual void PrefetchWritten(std::uint64_t bytes) {}
  virtual void PrefetchHit() {}
  virtual void PrefetchWasted(std::uint64_t bytes) {}
  virtual void ReplayDone(double seconds) {}
  virtual void TraceRecorded() {}
};

class NullEngineStats final : public EngineStats {
 public:
  void RequestDone(RequestOp, RequestResult, double) override {}
  void BytesRequested(std::uint64_t) override {}
  void BytesWritten(std::uint64_t, std::uint64_t) override {}
  void ChunkLookup(ChunkLookupResult) override {}
  void Decompressed(double) override {}
  void StageTime(Stage, double) override {}
  void InFlight(int) override {}
  void QueueDepth(int) override {}
  void OpenObjects(int, std::string_view) override {}
  void MalformedMessage() override {}
  void DeviceReadPressure() override {}
  void WorkerRestart() override {}
  void Restored() override {}
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_ENGINE_STATS_H_
