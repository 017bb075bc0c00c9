// AccessTrace: the record of what one start of a blob read, in first-access order: the
// 4 KiB block at which each chunk read in the first seconds after OPEN begins, each chunk
// once. A replaying node turns the blocks back into chunks of its own map (a block that is
// no chunk start of the map is skipped), so a record stays usable for the same blob's
// content whatever map produced it.
//
// Encoding (frozen; store/FORMAT.md "Access traces"): "LBTR", version byte 1, the blob's
// size (u64 LE), the number of entries (u32 LE), then each entry as the zigzag LEB128
// varint of its block minus the previous entry's block (the first minus 0). Decode refuses
// trailing bytes, a wrong size, more than kMaxEntries entries and blocks past the blob.
//
// Merging (several nodes' records of one blob): `base`'s order is kept, and each block only
// `other` names goes right after the block `other` read just before it (at the front when
// `other` read it first). Starts of one image read in nearly one order, so the merge of
// two records of it reads like either, with every chunk of both: runs of neighbouring
// chunks stay together, and a registry's fetch-ahead can still coalesce them. (Ordering
// by relative rank, the first design, zipped two records' runs into alternating blocks.)
// At most kMaxEntries entries are kept (the last are dropped).
//
// Thread-safety: plain values.
#ifndef LAZYBLOB_CORE_ACCESS_TRACE_H_
#define LAZYBLOB_CORE_ACCESS_TRACE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/chunk_source.h"
#include "core/status.h"

namespace lazyblob {

struct AccessTrace {
  // A record keeps at most this many chunks (about 2 bytes each encoded).
  static constexpr std::uint32_t kMaxEntries = 1u << 20;
  static constexpr std::uint64_t kBlockBytes = 4096;

  std::uint64_t blob_size = 0;
  std::vector<std::uint64_t> blocks;  // blob_offset / 4096 of each chunk, first access first

  std::string Encode() const;
  static Result<AccessTrace> Decode(std::string_view bytes);

  // `base` and `other` must describe the same blob (equal sizes; else `base` is returned).
  static AccessTrace Merge(const AccessTrace& base, const AccessTrace& other);

  // The chunks of `map` the record names, in its order (blocks that start no chunk of the
  // map are skipped; each chunk once).
  std::vector<std::size_t> ChunksOf(const BlobMap& map) const;
};

// Where a daemon keeps records, one per blob id. store/TraceDir is the real one.
// Thread-safety: implementations are thread-safe.
class AccessTraceStore {
 public:
  virtual ~AccessTraceStore() = default;
  // kNotFound when no record exists for `blob_id`.
  virtual Result<AccessTrace> Load(std::string_view blob_id) = 0;
  // Replaces the record of `blob_id`, durably.
  virtual Status Save(std::string_view blob_id, const AccessTrace& trace) = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_ACCESS_TRACE_H_
