// ParseByteSize: the one size grammar of lazyblob and lazyblobd (flags and config file).
//
//   "4096", "64K", "64k", "64KB", "64KiB", "1M", "1MiB", "2G", "1T", "512B"
//
// A decimal count of bytes, optionally followed by a unit, case-insensitive: B, K, M, G or
// T, each optionally followed by "B" or "iB". Every unit is binary (K = 1024, "KB" too):
// sizes here are chunk and cache sizes, where nobody means 1000. Whitespace, signs,
// fractions, overflow and unknown units are kInvalidArgument with an example in the
// message.
//
// Thread-safety: pure function.
#ifndef LAZYBLOB_TOOLS_BYTE_SIZE_H_
#define LAZYBLOB_TOOLS_BYTE_SIZE_H_

#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace lazyblob {

Result<std::uint64_t> ParseByteSize(std::string_view text);

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_BYTE_SIZE_H_
