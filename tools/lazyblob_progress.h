// ProgressBar: a one-line progress display on stderr for long CLI work (import, verify,
// export, gc, rebuild-index), with the rate and an ETA for byte counts. It draws only when enabled
// (stderr is a terminal and the user did not pass --no-progress), redraws at most ~10 times a
// second, and erases itself on Finish() or destruction so the result lines print cleanly.
//
// Thread-safety: Update() may be called from any thread (the store may report progress
// from worker threads); StartTicker(), Finish() and destruction from the owning thread.
#ifndef LAZYBLOB_TOOLS_LAZYBLOB_PROGRESS_H_
#define LAZYBLOB_TOOLS_LAZYBLOB_PROGRESS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace lazyblob::cli {

class ProgressBar {
 public:
  // `label` is the verb ("import"); `enabled` false makes every call a no-op.
  ProgressBar(std::string label, bool enabled);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // True when stderr is a terminal (and TERM is not "dumb").
  static bool StderrIsTerminal();

  // `done` of `total` units; total 0 = unknown (no bar, just a counter). `bytes` true
  // prints the units as sizes with a rate, false as plain counts ("1234/5000 chunks").
  void Update(std::uint64_t done, std::uint64_t total, bool bytes = true);
  // For work without progress reports (gc, rebuild-index): a thread redraws
  // "label ... 3s" until Finish(). Call at most once.
  void StartTicker();
  // Stops the ticker and erases the line. Idempotent.
  void Finish();

  bool enabled() const { return enabled_; }

  // The remaining time at the mean rate so far ("2m05s"); "" while it would be a guess
  // (less than a second of history, nothing done, no total, or done).
  static std::string Eta(std::uint64_t done, std::uint64_t total, double seconds);

 private:
  void Draw(std::uint64_t done, std::uint64_t total, bool bytes);

  const std::string label_;
  const bool enabled_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;     // guarded by mu_
  bool finished_ = false;  // guarded by mu_
  std::atomic<bool> stop_ticker_{false};
  std::thread ticker_;
};

}  // namespace lazyblob::cli

#endif  // LAZYBLOB_TOOLS_LAZYBLOB_PROGRESS_H_
