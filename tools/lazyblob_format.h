// Size, rate and time text for people, as the lazyblob CLI prints them. JSON output never
// uses these: scripts get exact numbers. Size flags are parsed by tools/byte_size.h.
//
// Thread-safety: pure functions.
#ifndef LAZYBLOB_TOOLS_LAZYBLOB_FORMAT_H_
#define LAZYBLOB_TOOLS_LAZYBLOB_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace lazyblob::cli {

// "512 B", "64.0 KiB", "1.50 MiB", "3.21 GiB": three significant digits, binary units.
std::string HumanBytes(std::uint64_t bytes);

// part / whole as "75.0%"; "0.0%" when whole is 0.
std::string HumanPercent(std::uint64_t part, std::uint64_t whole);

// "0.42 s", "12.3 s", "2m05s", "1h02m".
std::string HumanSeconds(double seconds);

// bytes / seconds, 0 when no time passed (for "MiB/s" and JSON bytes_per_s).
std::uint64_t BytesPerSecond(std::uint64_t bytes, double seconds);

// "2.35x"; "-" when the denominator is zero.
std::string HumanRatio(double ratio);

// Seconds since the epoch -> "2024-05-01 12:34:56" in local time; "-" for 0.
std::string HumanTime(std::int64_t unix_seconds);

// Seconds since the epoch -> "2024-05-01T12:34:56Z" (UTC, for JSON).
std::string IsoTimeUtc(std::int64_t unix_seconds);

}  // namespace lazyblob::cli

#endif  // LAZYBLOB_TOOLS_LAZYBLOB_FORMAT_H_
