// Chunker: splits a blob into chunks whose boundaries are 4 KiB-aligned blob offsets.
//
// Two kinds (ChunkerOptions::kind):
//  - kCdc: content-defined. At every 4 KiB block end inside a chunk, a gear hash of the
//    64 bytes before that block end decides whether to cut (FastCDC-style normalized
//    chunking: a stricter mask before avg_bytes, a looser one after). Chunks are at least
//    min_bytes and at most max_bytes long (except the blob's last chunk, which may be
//    shorter and unaligned). Because the decision only looks at bytes near the block
//    end, inserting data shifts cut points only locally once alignment is regained.
//  - kFixed: every chunk is avg_bytes long (the last one may be shorter).
//
// The cut points are part of the on-disk format (FORMAT.md): a store records the
// parameters per blob, and tests pin the cut points of a pseudo-random input, so they
// must never change for a given ChunkerOptions.
//
// Thread-safety: a Chunker is immutable after construction; NextCut may be called from
// many threads at once.
#ifndef LAZYBLOB_STORE_CHUNKER_H_
#define LAZYBLOB_STORE_CHUNKER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace lazyblob {

// Stored on disk (FORMAT.md): values are frozen.
enum class ChunkerKind : std::uint8_t { kCdc = 1, kFixed = 2 };

struct ChunkerOptions {
  ChunkerKind kind = ChunkerKind::kCdc;
  std::uint32_t min_bytes = 16 * 1024;   // kCdc only: no cut before this many bytes
  std::uint32_t avg_bytes = 64 * 1024;   // kCdc: target mean; kFixed: the chunk size
  std::uint32_t max_bytes = 256 * 1024;  // kCdc only: always cut here

  // All sizes multiples of 4 KiB, min <= avg <= max, avg a power of two, max <= 16 MiB.
  Status Validate() const;
  // "cdc:16384:65536:262144" / "fixed:65536"; Parse accepts the same forms.
  std::string ToString() const;
  static Result<ChunkerOptions> Parse(std::string_view text);

  friend bool operator==(const ChunkerOptions&, const ChunkerOptions&) = default;
};

class Chunker {
 public:
  // `options` must have passed Validate().
  explicit Chunker(const ChunkerOptions& options);

  // Length of the chunk that starts at data[0] (a 4 KiB-aligned blob offset).
  // `data` must hold at least MaxChunkBytes() bytes, or all the rest of the blob when
  // `at_end` is true. Returns a value in [1, data.size()]; 0 only when data is empty.
  std::size_t NextCut(std::span<const std::byte> data, bool at_end) const;

  // Chunk lengths of a whole in-memory blob (tests, tools).
  std::vector<std::uint32_t> SplitAll(std::span<const std::byte> blob) const;

  // The most bytes one chunk may have: what NextCut needs to see before deciding.
  std::uint32_t MaxChunkBytes() const;
  const ChunkerOptions& options() const { return options_; }

 private:
  ChunkerOptions options_;
  std::uint64_t mask_small_ = 0;  // cut test before avg_bytes
  std::uint64_t mask_large_ = 0;  // cut test from avg_bytes on
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_CHUNKER_H_
