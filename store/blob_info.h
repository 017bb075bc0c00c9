// The store's value types that its lower layers share (hashing, the index) without the
// ChunkStore facade: a SHA-256 digest and what the store records about a blob.
//
// Thread-safety: plain values.
#ifndef LAZYBLOB_STORE_BLOB_INFO_H_
#define LAZYBLOB_STORE_BLOB_INFO_H_

#include <array>
#include <cstdint>
#include <string>

#include "store/chunker.h"

namespace lazyblob {

using Sha256Digest = std::array<std::uint8_t, 32>;

struct BlobInfo {
  std::string id;
  std::uint64_t size = 0;
  std::uint64_t chunk_count = 0;
  ChunkerOptions chunker;
  Sha256Digest sha256{};  // of the whole blob
  std::int64_t created_unix_s = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_BLOB_INFO_H_
