// Move-only owners of kernel requests that still need an answer. Every OPEN and READ the
// kernel sends is answered exactly once: by the code that handled it, or, if that code
// drops the owner on any path (error, exception, shutdown), by the destructor, which
// fails the request (OPEN: copen -EIO; READ: completion without data, so the reader
// sees EIO instead of hanging).
//
// Thread-safety: one owner at a time; the CacheDevice must outlive the owner.
#ifndef LAZYBLOB_CORE_PENDING_REQUEST_H_
#define LAZYBLOB_CORE_PENDING_REQUEST_H_

#include <cerrno>
#include <cstdint>
#include <memory>
#include <utility>

#include "core/cache_device.h"
#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

class PendingOpen {
 public:
  PendingOpen() = default;
  PendingOpen(CacheDevice* device, std::uint32_t msg_id) : device_(device), msg_id_(msg_id) {}
  PendingOpen(PendingOpen&& o) noexcept
      : device_(std::exchange(o.device_, nullptr)), msg_id_(o.msg_id_) {}
  PendingOpen& operator=(PendingOpen&& o) noexcept {
    if (this != &o) {
      FailIfUnanswered();
      device_ = std::exchange(o.device_, nullptr);
      msg_id_ = o.msg_id_;
    }
    return *this;
  }
  ~PendingOpen() { FailIfUnanswered(); }

  std::uint32_t msg_id() const { return msg_id_; }
  bool answered() const { return device_ == nullptr; }

  // copen with the blob size (>= 0) or a negative errno. At most once.
  Status Reply(std::int64_t size_or_negative_errno) {
    CacheDevice* d = std::exchange(device_, nullptr);
    if (d == nullptr) return Internal("OPEN answered twice");
    return d->ReplyOpen(msg_id_, size_or_negative_errno);
  }

 private:
  void FailIfUnanswered() {
    if (device_ != nullptr) Reply(-EIO).IgnoreError();
  }
  CacheDevice* device_ = nullptr;
  std::uint32_t msg_id_ = 0;
};

// Holds a shared reference to the object's anon fd, so the fd stays open until the READ
// is answered even when CLOSE for the object arrives first.
class PendingRead {
 public:
  PendingRead() = default;
  PendingRead(CacheDevice* device, std::uint32_t msg_id, std::shared_ptr<const UniqueFd> anon_fd)
      : device_(device), msg_id_(msg_id), fd_(std::move(anon_fd)) {}
  PendingRead(PendingRead&& o) noexcept
      : device_(std::exchange(o.device_, nullptr)), msg_id_(o.msg_id_), fd_(std::move(o.fd_)) {}
  PendingRead& operator=(PendingRead&& o) noexcept {
    if (this != &o) {
      FailIfUnanswered();
      device_ = std::exchange(o.device_, nullptr);
      msg_id_ = o.msg_id_;
      fd_ = std::move(o.fd_);
    }
    return *this;
  }
  ~PendingRead() { FailIfUnanswered(); }

  std::uint32_t msg_id() const { return msg_id_; }
  // Borrowed; valid while this owner lives.
  int anon_fd() const { return fd_ ? fd_->get() : -1; }
  bool answered() const { return device_ == nullptr; }

  // Completes the READ. Whatever was written into the anon fd before is what the kernel
  // sees; a hole left in the requested range makes the reader get EIO. At most once.
  Status Complete() {
    CacheDevice* d = std::exchange(device_, nullptr);
    if (d == nullptr) return Internal("READ completed twice");
    return d->CompleteRead(anon_fd(), msg_id_);
  }

 private:
  void FailIfUnanswered() {
    if (device_ != nullptr) Complete().IgnoreError();
  }
  CacheDevice* device_ = nullptr;
  std::uint32_t msg_id_ = 0;
  std::shared_ptr<const UniqueFd> fd_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_PENDING_REQUEST_H_
