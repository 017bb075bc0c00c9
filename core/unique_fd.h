// UniqueFd: sole owner of a file descriptor; closes it on destruction.
// A raw `int` fd anywhere else in lazyblob is borrowed and must not be closed.
//
// Thread-safety: like a unique_ptr; one owner at a time.
#ifndef LAZYBLOB_CORE_UNIQUE_FD_H_
#define LAZYBLOB_CORE_UNIQUE_FD_H_

#include <utility>

namespace lazyblob {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }
  // Closes the owned fd (EINTR from close is not retried: Linux has already freed it).
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_UNIQUE_FD_H_
