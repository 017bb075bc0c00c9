// BlobLease: proof that a daemon serves a blob, so `lazyblob rm` and gc leave it alone.
//
// A lease is a shared flock (LOCK_SH) on <store>/leases/<name>.lock, where <name> is the
// hex of the blob id (ids longer than 120 bytes: "s" + hex of SHA-256 of the id). Any
// number of readers may hold a lease on the same blob; ChunkStore::Remove takes LOCK_EX
// with LOCK_NB and fails with kBusy while any lease exists. flock locks die with the
// process, so a crashed daemon never leaves a stale lease behind.
//
// Thread-safety: move-only value, owned by one thread at a time. Obtain it from
// ChunkStore::LeaseBlob; it does not borrow the ChunkStore and may outlive it.
#ifndef LAZYBLOB_STORE_BLOB_LEASE_H_
#define LAZYBLOB_STORE_BLOB_LEASE_H_

#include <string>
#include <string_view>

#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

class BlobLease {
 public:
  BlobLease() = default;
  BlobLease(BlobLease&&) noexcept = default;
  BlobLease& operator=(BlobLease&&) noexcept = default;
  ~BlobLease() = default;  // closing the fd drops the lock

  // Takes LOCK_SH on the lease file of `blob_id` under `store_dir` (created if needed).
  static Result<BlobLease> Acquire(const std::string& store_dir, std::string_view blob_id);

  // Path of the lease file of `blob_id` under `store_dir`.
  static std::string LockPath(const std::string& store_dir, std::string_view blob_id);

  bool held() const { return fd_.valid(); }
  const std::string& blob_id() const { return blob_id_; }

 private:
  BlobLease(UniqueFd fd, std::string blob_id) : fd_(std::move(fd)), blob_id_(std::move(blob_id)) {}
  UniqueFd fd_;
  std::string blob_id_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_BLOB_LEASE_H_
