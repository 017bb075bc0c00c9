// ChunkSource: what the request engine needs from a chunk store. store/ChunkStore is the
// real implementation (RocksDB index + pack files); tests use an in-memory double.
//
// Thread-safety: implementations are thread-safe; many workers call at once.
#ifndef LAZYBLOB_CORE_CHUNK_SOURCE_H_
#define LAZYBLOB_CORE_CHUNK_SOURCE_H_

#include <array>
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

class ChunkSource {
 public:
  virtual ~ChunkSource() = default;

  // kNotFound when no blob has this id.
  virtual Result<std::shared_ptr<const BlobMap>> OpenBlob(std::string_view blob_id) = 0;

  // Decompresses one chunk into `out` (4 KiB-aligned, at least AlignUp(extent.length)
  // bytes), verifies its XXH3-128 against extent.key and zero-fills `out` up to the next
  // 4 KiB boundary. kCorruption or kNotFound on failure; `out` must then not be served.
  virtual Status ReadChunk(const ChunkExtent& extent, std::span<std::byte> out) = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_CHUNK_SOURCE_H_
