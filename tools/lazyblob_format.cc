#include "tools/lazyblob_format.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace lazyblob::cli {
namespace {

// Returns the multiplier of a size suffix, 0 when unknown.
std::uint64_t SuffixMultiplier(std::string_view s) {
  if (s.empty() || s == "B" || s == "b") return 1;
  std::uint64_t m;
  switch (s[0]) {
    case 'k':
    case 'K':
      m = 1ULL << 10;
      break;
    case 'm':
    case 'M':
      m = 1ULL << 20;
      break;
    case 'g':
    case 'G':
      m = 1ULL << 30;
      break;
    case 't':
    case 'T':
      m = 1ULL << 40;
      break;
    default:
      return 0;
  }
  std::string_view rest = s.substr(1);
  if (rest.empty() || rest == "B" || rest == "iB" || rest == "ib" || rest == "b") return m;
  return 0;
}

}  // namespace

Result<std::uint64_t> ParseByteSize(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return InvalidArgument("bad size '" + std::string(text) + "': " + std::string(why) +
                           " (examples: 4096, 64K, 1M, 1MiB)");
  };
  std::uint64_t number = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, number);
  if (ec == std::errc::result_out_of_range) return bad("too large");
  if (ec != std::errc() || ptr == first) return bad("not a number");
  const std::uint64_t mult = SuffixMultiplier(std::string_view(ptr, last - ptr));
  if (mult == 0) return bad("unknown unit");
  if (number > UINT64_MAX / mult) return bad("too large");
  return number * mult;
}

std::string HumanBytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024.0 && unit < 6) {
    v /= 1024.0;
    ++unit;
  }
  char buf[32];
  const int decimals = v < 10 ? 2 : (v < 100 ? 1 : 0);
  std::snprintf(buf, sizeof buf, "%.*f %s", decimals, v, kUnits[unit]);
  return buf;
}

std::string HumanRatio(double ratio) {
  if (!std::isfinite(ratio) || ratio <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", ratio);
  return buf;
}

std::string HumanTime(std::int64_t unix_seconds) {
  if (unix_seconds == 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string IsoTimeUtc(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace lazyblob::cli
