// AlignedBuffer: a heap buffer whose start and capacity are multiples of 4 KiB, as the
// kernel requires for O_DIRECT writes into a cachefiles anon fd (PROTOCOL.md).
//
// Thread-safety: none; owned by one thread at a time. Move-only.
#ifndef LAZYBLOB_CORE_ALIGNED_BUFFER_H_
#define LAZYBLOB_CORE_ALIGNED_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <span>
#include <utility>

namespace lazyblob {

inline constexpr std::size_t kBlockSize = 4096;

constexpr std::uint64_t AlignUp(std::uint64_t v, std::uint64_t a = kBlockSize) {
  return (v + a - 1) / a * a;
}
constexpr std::uint64_t AlignDown(std::uint64_t v, std::uint64_t a = kBlockSize) {
  return v / a * a;
}

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Capacity is rounded up to whole blocks. Throws std::bad_alloc like any allocation.
  explicit AlignedBuffer(std::size_t size) : size_(AlignUp(size)) {
    if (size_ != 0) {
      data_ = static_cast<std::byte*>(std::aligned_alloc(kBlockSize, size_));
      if (data_ == nullptr) throw std::bad_alloc();
    }
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }
  // Whole blocks.
  std::size_t size() const { return size_; }
  std::span<std::byte> span() { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_ALIGNED_BUFFER_H_
