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

class EngineStats {
 public:
  virtual ~EngineStats() = default;

  // A request was answered; `seconds` from the message read to the answer.
  virtual void RequestDone(RequestOp op, RequestResult result, double seconds) = 0;
  virtual void BytesRequested(std::uint64_t bytes) = 0;
  // Bytes pwritten into cache files, and the part of them beyond what READs asked for.
  virtual void BytesWritten(std::uint64_t bytes, std::uint64_t ahead_bytes) = 0;
  virtual void ChunkLookup(ChunkLookupResult result) = 0;
  virtual void Decompressed(double seconds) = 0;
  virtual void InFlight(int delta) = 0;
  virtual void QueueDepth(int delta) = 0;
  // An OPEN succeeded (+1) or its CLOSE released it (-1). `blob_id` is bounded by what
  // is open; implementations may ignore it.
  virtual void OpenObjects(int delta, std::string_view blob_id) = 0;
  virtual void MalformedMessage() = 0;
  virtual void WorkerRestart() = 0;
  virtual void Restored() = 0;
};

class NullEngineStats final : public EngineStats {
 public:
  void RequestDone(RequestOp, RequestResult, double) override {}
  void BytesRequested(std::uint64_t) override {}
  void BytesWritten(std::uint64_t, std::uint64_t) override {}
  void ChunkLookup(ChunkLookupResult) override {}
  void Decompressed(double) override {}
  void InFlight(int) override {}
  void QueueDepth(int) override {}
  void OpenObjects(int, std::string_view) override {}
  void MalformedMessage() override {}
  void WorkerRestart() override {}
  void Restored() override {}
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_ENGINE_STATS_H_
