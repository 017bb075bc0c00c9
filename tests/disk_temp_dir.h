// Test-only: temporary directories on a disk-backed filesystem.
//
// Cache files (the simulator's anon fds, the engine tests' stand-ins) must behave like the
// kernel's O_DIRECT cache files, which tmpfs does not: /tmp is a tmpfs on Debian 13 and most
// systemd distributions, so tests never put such files under ::testing::TempDir().
// LAZYBLOB_TEST_DIR overrides the base (default /var/tmp, disk-backed by the FHS).
#ifndef LAZYBLOB_TESTS_DISK_TEMP_DIR_H_
#define LAZYBLOB_TESTS_DISK_TEMP_DIR_H_

#include <stdlib.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace lazyblob::testing {

inline std::string DiskTempBase() {
  const char* base = std::getenv("LAZYBLOB_TEST_DIR");
  return base != nullptr && *base != '\0' ? base : "/var/tmp";
}

// Creates <base>/<prefix>XXXXXX (mode 0700) and returns its path; empty on failure.
inline std::string MakeDiskTempDir(std::string_view prefix) {
  std::string tmpl = DiskTempBase() + "/" + std::string(prefix) + "XXXXXX";
  return ::mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
}

}  // namespace lazyblob::testing

#endif  // LAZYBLOB_TESTS_DISK_TEMP_DIR_H_
