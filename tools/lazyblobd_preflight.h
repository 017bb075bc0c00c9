// Preflight: what lazyblobd checks before it opens the device, so that a broken start
// exits 2 at once and touches nothing (no device commands written, no cache bound):
//
//   1. the store opens (read-only, as the worker will open it; in a forked child, so the
//      supervisor stays single-threaded);
//   2. the cache directory is a directory (not with the test-only simulator);
//   3. the metrics address parses and can be bound now;
//   4. the device is the cachefiles character device (CheckCachefilesDevice).
//
// --check-config runs exactly these and exits.
//
// Thread-safety: call from the main thread before any other thread exists (it forks).
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_PREFLIGHT_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_PREFLIGHT_H_

#include <string>

#include "core/status.h"
#include "tools/lazyblobd_config.h"

namespace lazyblob {

// The first problem found, in the order above, as a message that names the flag.
Status Preflight(const DaemonConfig& config);

// `path` must be a character device whose st_rdev is the one the misc device "cachefiles"
// registered (`sysfs_dev`, "MAJOR:MINOR", from /sys/class/misc/cachefiles/dev). When that
// file is missing (cachefiles not loaded, or no sysfs), the device must at least be a misc
// character device (major 10). A regular file, a directory or /dev/zero is kInvalidArgument.
Status CheckCachefilesDevice(const std::string& path,
                             const std::string& sysfs_dev = "/sys/class/misc/cachefiles/dev");

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_PREFLIGHT_H_
