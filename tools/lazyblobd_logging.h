// lazyblobd's logging: spdlog on stderr, fed by core's log sink too, with
//  - a rate limit: a line repeated more than 10 times in 5 s (lines that differ only in
//    their numbers count as the same) is suppressed for the rest of those 5 s, and the
//    next one after them says how many were left out. A wrong device once produced
//    166 million identical lines in 10 minutes; now it produces a few per 5 s.
//  - two formats: "text" (journald-friendly "level: message" under systemd, else with a
//    timestamp and pid) and "json" (one object per line: time, level, pid, msg).
//
// Thread-safety: SetupLogging once from the main thread before other threads start;
// ApplyLogLevel from any thread; LogRateLimiter is not thread-safe (the sink locks it).
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_LOGGING_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_LOGGING_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace lazyblob {

void SetupLogging(const std::string& level, const std::string& format);
void ApplyLogLevel(const std::string& level);

// The rate limit's bookkeeping, separate from spdlog so it can be tested with a fake
// clock.
class LogRateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    int burst = 10;                          // lines per key and window shown
    std::chrono::milliseconds window{5000};  // the window
    std::size_t max_keys = 1024;             // distinct lines tracked at once
  };
  LogRateLimiter() : LogRateLimiter(Options{}) {}
  explicit LogRateLimiter(Options options) : options_(options) {}

  struct Verdict {
    bool show = false;             // print this line
    std::uint64_t suppressed = 0;  // > 0: first print "N similar lines suppressed"
  };
  Verdict Admit(std::string_view line, Clock::time_point now);

  // "abc 123 x7" -> "abc # x#": lines that differ only in numbers share a key.
  static std::string KeyOf(std::string_view line);

 private:
  struct Entry {
    Clock::time_point window_start;
    int shown = 0;
    std::uint64_t suppressed = 0;
  };
  const Options options_;
  std::map<std::string, Entry> entries_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_LOGGING_H_
