#include "store/hashing.h"

#include <openssl/evp.h>
#include <xxhash.h>

#include <cstdlib>

namespace lazyblob {

ChunkKey ChunkKeyOf(std::span<const std::byte> data) {
  XXH128_hash_t h = XXH3_128bits(data.data(), data.size());
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  ChunkKey k;
  static_assert(sizeof c.digest == 16);
  for (int i = 0; i < 16; ++i) k.bytes[i] = c.digest[i];
  return k;
}

Sha256Digest Sha256Of(std::span<const std::byte> data) {
  Sha256Digest d{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr) != 1) {
    std::abort();  // cannot fail for SHA-256 short of memory corruption
  }
  return d;
}

std::string HexOf(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 0xf]);
  }
  return s;
}

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) std::abort();
}
Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(ctx_); }
void Sha256Stream::Update(std::span<const std::byte> data) {
  EVP_DigestUpdate(ctx_, data.data(), data.size());
}
Sha256Digest Sha256Stream::Finish() {
  Sha256Digest d{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, d.data(), &len);
  return d;
}

}  // namespace lazyblob
