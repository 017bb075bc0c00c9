// Helpers shared by the store tests: temp directories and deterministic test data.
#ifndef LAZYBLOB_TESTS_STORE_STORE_TEST_UTIL_H_
#define LAZYBLOB_TESTS_STORE_STORE_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "store/chunk_store.h"

namespace lazyblob::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/lazyblob-store-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Deterministic pseudo-random bytes (xorshift64*), half-compressible when `text` is set.
inline std::vector<std::byte> RandomBytes(std::size_t n, std::uint64_t seed, bool text = false) {
  std::vector<std::byte> v(n);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    std::uint64_t r = x * 0x2545f4914f6cdd1dull;
    v[i] = static_cast<std::byte>(text ? 'a' + (r >> 59) % 8 : r >> 56);
  }
  return v;
}

inline void WriteFile(const std::string& path, const std::vector<std::byte>& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

inline std::vector<std::byte> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> v(c.size());
  std::memcpy(v.data(), c.data(), c.size());
  return v;
}

inline ChunkerOptions SmallCdc() {
  ChunkerOptions c;
  c.min_bytes = 4096;
  c.avg_bytes = 16384;
  c.max_bytes = 65536;
  return c;
}

inline ChunkStoreOptions WriterOptions(const std::string& dir) {
  ChunkStoreOptions o;
  o.path = dir;
  o.writable = true;
  o.create_if_missing = true;
  o.default_chunker = SmallCdc();
  o.import_threads = 2;
  return o;
}

inline ChunkStoreOptions ReaderOptions(const std::string& dir) {
  ChunkStoreOptions o;
  o.path = dir;
  o.default_chunker = SmallCdc();
  return o;
}

}  // namespace lazyblob::testing

#define ASSERT_OK(expr)                          \
  do {                                           \
    auto lb_s_ = (expr);                         \
    ASSERT_TRUE(lb_s_.ok()) << lb_s_.ToString(); \
  } while (0)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                   \
  auto LB_CONCAT_(lb_t_, __LINE__) = (expr);              \
  ASSERT_TRUE(LB_CONCAT_(lb_t_, __LINE__).ok())           \
      << LB_CONCAT_(lb_t_, __LINE__).status().ToString(); \
  lhs = std::move(LB_CONCAT_(lb_t_, __LINE__)).value()

#endif  // LAZYBLOB_TESTS_STORE_STORE_TEST_UTIL_H_
