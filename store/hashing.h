// Hashing helpers of the store: XXH3-128 chunk keys and SHA-256 (OpenSSL EVP).
//
// Thread-safety: free functions are thread-safe; a Sha256Stream is owned by one thread.
#ifndef LAZYBLOB_STORE_HASHING_H_
#define LAZYBLOB_STORE_HASHING_H_

#include <cstdint>
#include <span>
#include <string>

#include "core/chunk_source.h"
#include "store/blob_info.h"

struct evp_md_ctx_st;

namespace lazyblob {

// XXH3_128bits of `data`, in canonical (big-endian) byte order.
ChunkKey ChunkKeyOf(std::span<const std::byte> data);
Sha256Digest Sha256Of(std::span<const std::byte> data);
std::string HexOf(std::span<const std::uint8_t> bytes);

// Incremental SHA-256 of a whole blob.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(std::span<const std::byte> data);
  Sha256Digest Finish();

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_HASHING_H_
