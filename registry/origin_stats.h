// OriginStats: what lazyblobd's registry origin (OriginSource) reports about its work.
// metrics/PrometheusOriginStats implements it (metrics/ depends on registry/, never the
// other way); tests use NullOriginStats. Called on the READ path: implementations must
// not block.
//
// Thread-safety: implementations must be safe to call from any thread at once.
#ifndef LAZYBLOB_REGISTRY_ORIGIN_STATS_H_
#define LAZYBLOB_REGISTRY_ORIGIN_STATS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace lazyblob {

// How one exchange with the registry ended. Label values, frozen for dashboards.
enum class OriginResult : int {
  kOk = 0,
  kNotFound = 1,   // 404: no such tag or blob
  kDenied = 2,     // 401/403: credentials refused, or a TLS certificate that does not verify
  kError = 3,      // transport failures, timeouts, 5xx after the retries
  kCorrupt = 4,    // bytes that fail their hash (a chunk, a chunk map)
  kMalformed = 5,  // a manifest or chunk map that is not a valid lazyblob one
};
inline constexpr int kOriginResultCount = 6;

constexpr std::string_view OriginResultName(OriginResult r) {
  constexpr std::string_view kNames[kOriginResultCount] = {"ok",    "not_found", "denied",
                                                           "error", "corrupt",   "malformed"};
  const int i = static_cast<int>(r);
  return i >= 0 && i < kOriginResultCount ? kNames[i] : std::string_view("unknown");
}

// The result a registry call's status stands for.
OriginResult OriginResultOf(const Status& status);

// Where OriginSource found a chunk it was asked for.
enum class OriginChunkFrom : int {
  kLocal = 0,   // the node's own store (imported or pulled)
  kCache = 1,   // the origin cache (fetched before, by this or an earlier daemon)
  kOrigin = 2,  // fetched from the registry for this read, or joined such a fetch
};
inline constexpr int kOriginChunkFromCount = 3;

constexpr std::string_view OriginChunkFromName(OriginChunkFrom f) {
  constexpr std::string_view kNames[kOriginChunkFromCount] = {"local", "cache", "origin"};
  const int i = static_cast<int>(f);
  return i >= 0 && i < kOriginChunkFromCount ? kNames[i] : std::string_view("unknown");
}

class OriginStats {
 public:
  virtual ~OriginStats() = default;

  // A blob id was resolved at OPEN (manifest + chunk map GETs), or found in the kept maps
  // (`kept`: no request was sent).
  virtual void Resolved(OriginResult result, bool kept) = 0;
  // One Range GET: how it ended, its wall time, the body bytes received and the chunks it
  // carried (its coalescing); `range_ignored` when the server answered 200 (whole blob).
  virtual void RangeRequest(OriginResult result, double seconds, std::uint64_t bytes,
                            std::size_t chunks, bool range_ignored) = 0;
  // Chunks verified and kept (fetched), and chunks refused by their hash.
  virtual void ChunksFetched(std::size_t chunks) = 0;
  virtual void ChunkRejected() = 0;
  // A chunk read was served from `from`.
  virtual void ChunkRead(OriginChunkFrom from) = 0;
  // A read found the chunk already being fetched by another and waited for it.
  virtual void SingleFlightJoin() = 0;
  // Chunks whose fetch was started ahead of reads (trace replay's hint, FetchAhead).
  virtual void FetchedAhead(std::size_t chunks) = 0;
  // The origin cache's pack bytes and its bound.
  virtual void CacheBytes(std::uint64_t bytes, std::uint64_t limit_bytes) = 0;
  // One eviction run: packs deleted, chunks dropped and their bytes.
  virtual void Evicted(std::uint64_t packs, std::uint64_t chunks, std::uint64_t bytes) = 0;
  // Fetched, verified chunks could not be written to the origin cache (they were still
  // served; a later read fetches them again).
  virtual void PersistFailed() = 0;
};

class NullOriginStats final : public OriginStats {
 public:
  void Resolved(OriginResult, bool) override {}
  void RangeRequest(OriginResult, double, std::uint64_t, std::size_t, bool) override {}
  void ChunksFetched(std::size_t) override {}
  void ChunkRejected() override {}
  void ChunkRead(OriginChunkFrom) override {}
  void SingleFlightJoin() override {}
  void FetchedAhead(std::size_t) override {}
  void CacheBytes(std::uint64_t, std::uint64_t) override {}
  void Evicted(std::uint64_t, std::uint64_t, std::uint64_t) override {}
  void PersistFailed() override {}
};

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_ORIGIN_STATS_H_
