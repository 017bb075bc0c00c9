// ChunkSource: what the request engine needs from a chunk store. store/ChunkStore is the
// real implementation (RocksDB index + pack files); tests use an in-memory double.
//
// Thread-safety: implementations are thread-safe; many workers call at once.
#ifndef LAZYBLOB_CORE_CHUNK_SOURCE_H_
#define LAZYBLOB_CORE_CHUNK_SOURCE_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace lazyblob {

// XXH3-128 of a chunk's uncompressed bytes, big-endian (canonical XXH128 form).
struct ChunkKey {
  std::array<std::uint8_t, 16> bytes{};

  friend bool operator==(const ChunkKey&, const ChunkKey&) = default;
  friend auto operator<=>(const ChunkKey&, const ChunkKey&) = default;
  std::string ToHex() const;
  static Result<ChunkKey> FromHex(std::string_view hex);
};

struct ChunkKeyHash {
  std::size_t operator()(const ChunkKey& k) const {
    std::size_t h;
    std::memcpy(&h, k.bytes.data(), sizeof h);  // already uniformly distributed
    return h;
  }
};

// One chunk of a blob. Chunks start on 4 KiB-aligned blob offsets.
struct ChunkExtent {
  std::uint64_t blob_offset = 0;
  std::uint32_t length = 0;  // uncompressed bytes; only the blob's last chunk may be unaligned
  ChunkKey key;
};

// A blob's whole chunk map, loaded once at OPEN and shared by all READs of the object.
struct BlobMap {
  std::string id;
  std::uint64_t size = 0;
  std::vector<ChunkExtent> extents;  // sorted, contiguous, covering [0, size)

  // Indexes [first, last) of the extents overlapping [offset, offset + length), clipped
  // to the blob. Empty when offset >= size.
  std::pair<std::size_t, std::size_t> Covering(std::uint64_t offset, std::uint64_t length) const;
};

// A blob as ChunkSource::OpenBlob hands it out: its map, and an opaque hold that keeps the
// blob servable (store/: a lease that makes `lazyblob rm` refuse while it lives). Both are
// shared: the hold is released when the last copy goes.
struct OpenedBlob {
  std::shared_ptr<const BlobMap> map;
  std::shared_ptr<void> hold;  // may be null: the source promises nothing beyond the map
};

// Where one ChunkSource::ReadChunk call spent its time. Sources add to the fields (so one
// struct may sum several calls) and leave untouched what they cannot split.
struct ChunkReadTimings {
  std::chrono::nanoseconds lookup{0};      // index lookup (and catch-up on a miss)
  std::chrono::nanoseconds read{0};        // reading the stored bytes (pack pread)
  std::chrono::nanoseconds decompress{0};  // decompression (or the copy of a raw chunk)
  std::chrono::nanoseconds verify{0};      // hash check of the uncompressed bytes

  std::chrono::nanoseconds total() const { return lookup + read + decompress + verify; }
};

// Times consecutive steps into a ChunkReadTimings: Lap(&ChunkReadTimings::read) adds the
// time since the previous lap (or construction). With a null struct it never reads the
// clock, so an untimed ReadChunk pays one branch per step.
class ChunkReadStopwatch {
 public:
  explicit ChunkReadStopwatch(ChunkReadTimings* timings)
      : timings_(timings), last_(timings != nullptr ? Clock::now() : Clock::time_point()) {}

  void Lap(std::chrono::nanoseconds ChunkReadTimings::*field) {
    if (timings_ == nullptr) return;
    const Clock::time_point now = Clock::now();
    timings_->*field += std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_);
    last_ = now;
  }

 private:
  using Clock = std::chrono::steady_clock;
  ChunkReadTimings* const timings_;
  Clock::time_point last_;
};

class ChunkSource {
 public:
  virtual ~ChunkSource() = default;

  // The blob's map and a hold on it, kept by the caller while it serves the blob.
  // kNotFound when no blob has this id.
  virtual Result<OpenedBlob> OpenBlob(std::string_view blob_id) = 0;

  // Decompresses one chunk into `out` (4 KiB-aligned, at least AlignUp(extent.length)
  // bytes), verifies its XXH3-128 against extent.key and zero-fills `out` up to the next
  // 4 KiB boundary. kCorruption or kNotFound on failure; `out` must then not be served.
  // `timings` (optional, may be null): where the call spent its time, added to its fields;
  // a null pointer must cost nothing measurable.
  virtual Status ReadChunk(const ChunkExtent& extent, std::span<std::byte> out,
                           ChunkReadTimings* timings) = 0;
  // A hint: this thread is about to ReadChunk these extents of one blob, in this order (a
  // run of consecutive chunks the CacheFiller writes with one pwritev). A source that
  // fetches from far away (a registry) can fetch them together; a local store ignores it.
  // Borrowed for the call only; never required for correctness.
  virtual void WillRead(std::span<const ChunkExtent> extents) {}
  // A hint from trace replay: these extents of one blob are read soon, in this order. A
  // source that fetches from far away starts fetching them now, in the background and a
  // few requests at once, so the reads that follow find them near; at most
  // `bytes_per_second` of stored bytes (0: unbounded). The fetches go on while the caller
  // keeps the returned hold; dropping it cancels those not yet started. A local store
  // ignores it (null hold). Never required for correctness: a ReadChunk of a chunk not
  // fetched yet fetches it itself, or joins the fetch under way.
  virtual std::shared_ptr<void> FetchAhead(std::span<const ChunkExtent> extents,
                                           std::uint64_t bytes_per_second) {
    return nullptr;
  }

  // Untimed. Implementations add `using ChunkSource::ReadChunk;` to keep it visible.
  Status ReadChunk(const ChunkExtent& extent, std::span<std::byte> out) {
    return ReadChunk(extent, out, nullptr);
  }
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_CHUNK_SOURCE_H_
