// Store-wide advisory locks (FORMAT.md "Locks"): <store>/LOCK (one writer, LOCK_EX,
// holds the writer's pid as text) and <store>/SERVING (LOCK_SH by every serving daemon,
// so the gc of older lazyblob versions, which takes LOCK_EX, still refuses to run under
// one), plus the exclusive side of blob leases used by Remove.
//
// All are flock(2) locks: they die with their process, so a crash never leaves one
// behind. Thread-safety: free functions; the returned UniqueFd owns the lock.
#ifndef LAZYBLOB_STORE_STORE_LOCK_H_
#define LAZYBLOB_STORE_STORE_LOCK_H_

#include <string>
#include <string_view>

#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

// kBusy "store DIR is locked by another writer (pid N)" when held elsewhere.
Result<UniqueFd> LockStoreForWriting(const std::string& store_dir);
// Shared SERVING lock (blocking only against an older tool's gc, which is short).
Result<UniqueFd> LockStoreForServing(const std::string& store_dir);
// Exclusive lease lock of a blob without waiting; kBusy when a daemon serves the blob.
Result<UniqueFd> LockBlobAgainstLeases(const std::string& store_dir, std::string_view blob_id);

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_STORE_LOCK_H_
