#include "tools/lazyblob_format.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace lazyblob::cli {

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

std::string HumanPercent(std::uint64_t part, std::uint64_t whole) {
  char buf[32];
  const double pct =
      whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  std::snprintf(buf, sizeof buf, "%.1f%%", pct);
  return buf;
}

std::string HumanSeconds(double seconds) {
  char buf[32];
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  if (seconds < 10) {
    std::snprintf(buf, sizeof buf, "%.2f s", seconds);
  } else if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  } else if (seconds < 3600) {
    const long s = static_cast<long>(seconds);
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  } else {
    const long m = static_cast<long>(seconds / 60);
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", m / 60, m % 60);
  }
  return buf;
}

std::uint64_t BytesPerSecond(std::uint64_t bytes, double seconds) {
  if (!(seconds > 0)) return 0;
  return static_cast<std::uint64_t>(static_cast<double>(bytes) / seconds);
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
