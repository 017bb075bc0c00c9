// RaiseFdLimit: lifts this process's RLIMIT_NOFILE soft limit to its hard limit. Each open
// cachefiles object costs the daemon an anon fd (and a lease fd), so the default soft limit
// of 1024 ends in EMFILE from the kernel after a few hundred mounts; workers inherit the
// raised limit. Called once at start, before any thread exists.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_RLIMIT_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_RLIMIT_H_

#include <cstdint>

#include "core/status.h"

namespace lazyblob {

struct FdLimit {
  std::uint64_t soft_before = 0;
  std::uint64_t soft = 0;  // now
  std::uint64_t hard = 0;
};

Result<FdLimit> RaiseFdLimit();

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_RLIMIT_H_
