// Byte-size and time text for the lazyblob CLI: parsing size flags ("64K", "1MiB",
// "4096") and printing sizes and timestamps for people. JSON output never uses these:
// scripts get exact integers.
//
// Thread-safety: pure functions.
#ifndef LAZYBLOB_TOOLS_LAZYBLOB_FORMAT_H_
#define LAZYBLOB_TOOLS_LAZYBLOB_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace lazyblob::cli {

// Parses "4096", "64K", "64k", "64KB", "64KiB", "1M", "1MiB", "2G", "1T" (binary
// multiples: K = 1024). Whitespace, negative numbers, fractions, overflow and unknown
// suffixes are kInvalidArgument.
Result<std::uint64_t> ParseByteSize(std::string_view text);

// "512 B", "64.0 KiB", "1.50 MiB", "3.21 GiB": three significant digits, binary units.
std::string HumanBytes(std::uint64_t bytes);

// "2.35x"; "-" when the denominator is zero.
std::string HumanRatio(double ratio);

// Seconds since the epoch -> "2024-05-01 12:34:56" in local time; "-" for 0.
std::string HumanTime(std::int64_t unix_seconds);

// Seconds since the epoch -> "2024-05-01T12:34:56Z" (UTC, for JSON).
std::string IsoTimeUtc(std::int64_t unix_seconds);

}  // namespace lazyblob::cli

#endif  // LAZYBLOB_TOOLS_LAZYBLOB_FORMAT_H_
