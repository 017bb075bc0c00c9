// Helpers shared by the read benchmark's parts (read_bench*.cc): timing, percentiles, the
// read plan (which byte ranges each thread reads, in which order), RSS. Not a library: a
// benchmark-local header. Thread-safety: free functions are pure; LatencyLog is one per
// thread, merged after the threads joined.
#ifndef LAZYBLOB_BENCH_READ_BENCH_UTIL_H_
#define LAZYBLOB_BENCH_READ_BENCH_UTIL_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace lazyblob::bench {

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// q in [0, 1]; nearest-rank on a copy. 0 for an empty sample.
inline double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

inline double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

enum class Pattern { kSequential, kRandom };
inline const char* PatternName(Pattern p) { return p == Pattern::kSequential ? "seq" : "rand"; }

// One read of [offset, offset + length).
struct ReadOp {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// Splits [0, size) into `threads` contiguous slices of `unit`-sized reads; sequential keeps
// each slice in order, random shuffles each slice (fixed seed: same plan every run).
inline std::vector<std::vector<ReadOp>> MakePlan(std::uint64_t size, std::uint64_t unit,
                                                 int threads, Pattern pattern) {
  std::vector<ReadOp> all;
  for (std::uint64_t off = 0; off < size; off += unit) {
    all.push_back({off, std::min(unit, size - off)});
  }
  std::vector<std::vector<ReadOp>> plan(threads);
  const std::size_t per = (all.size() + threads - 1) / threads;
  for (std::size_t i = 0; i < all.size(); ++i) plan[i / per].push_back(all[i]);
  if (pattern == Pattern::kRandom) {
    std::mt19937_64 rng(42);
    for (auto& p : plan) std::shuffle(p.begin(), p.end(), rng);
  }
  return plan;
}

// Peak and current resident set (KiB) of this process, from /proc/self/status.
struct Rss {
  std::uint64_t hwm_kib = 0;
  std::uint64_t rss_kib = 0;
};
inline Rss ReadRss() {
  Rss r;
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") in >> r.hwm_kib;
    if (key == "VmRSS:") in >> r.rss_kib;
  }
  return r;
}

}  // namespace lazyblob::bench

#endif  // LAZYBLOB_BENCH_READ_BENCH_UTIL_H_
