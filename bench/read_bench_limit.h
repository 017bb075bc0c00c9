// The read benchmark's "limit": the least work any daemon must do to serve a blob from the
// store into a cache file -- pread the compressed chunk from its pack, ZSTD_decompress it,
// pwrite it O_DIRECT (aligned) into a file -- with no engine, no simulator, no index
// lookup and no verification. Also a single-threaded stage probe that splits one chunk's
// service into lookup / read / decompress / verify / write.
//
// Thread-safety: each function runs to completion on the calling thread (RunLimit starts
// and joins its own threads). `store` is borrowed for the call.
#ifndef LAZYBLOB_BENCH_READ_BENCH_LIMIT_H_
#define LAZYBLOB_BENCH_READ_BENCH_LIMIT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bench/read_bench_util.h"
#include "core/chunk_source.h"
#include "core/status.h"
#include "store/chunk_store.h"

namespace lazyblob::bench {

// Where one chunk of the blob lives in the packs, found by scanning them (PackScanner).
struct LimitChunk {
  ChunkExtent extent;
  std::uint32_t pack_id = 0;
  std::uint64_t payload_offset = 0;  // of the stored bytes in the pack
  std::uint32_t stored_len = 0;
  bool zstd = false;
};

Result<std::vector<LimitChunk>> LocateChunks(const std::string& store_dir, const BlobMap& map);

struct LimitRun {
  double seconds = 0;
  std::uint64_t bytes = 0;  // blob bytes written
};

// Writes every chunk of the blob into a new file `out_dir`/limit.bin (sized like the blob),
// with `threads` threads, each taking a contiguous slice of chunks, in order (sequential) or
// shuffled (random).
Result<LimitRun> RunLimit(const std::string& store_dir, const std::vector<LimitChunk>& chunks,
                          std::uint64_t blob_size, const std::string& out_dir, int threads,
                          Pattern pattern);

// Seconds summed over all chunks of the blob, one thread. lookup is ChunkStore::ReadChunk's
// own index lookup (ChunkReadTimings); read, decompress, verify and write are the same
// steps done directly.
struct StageTimes {
  double lookup = 0, read = 0, decompress = 0, verify = 0, write = 0;
  double store_read_chunk = 0;  // ChunkStore::ReadChunk, whole
  std::uint64_t chunks = 0;
};
Result<StageTimes> ProbeStages(ChunkStore* store, const std::string& store_dir,
                               const std::vector<LimitChunk>& chunks, std::uint64_t blob_size,
                               const std::string& out_dir);

}  // namespace lazyblob::bench

#endif  // LAZYBLOB_BENCH_READ_BENCH_LIMIT_H_
