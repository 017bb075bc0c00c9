#include "tools/lazyblob_progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tools/lazyblob_format.h"

namespace lazyblob::cli {
namespace {
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr int kBarWidth = 30;
}  // namespace

std::string ProgressBar::Eta(std::uint64_t done, std::uint64_t total, double seconds) {
  // Under a second or two of history the rate is noise; say nothing rather than guess.
  if (total == 0 || done == 0 || done >= total || seconds < 1.0) return "";
  const double rate = static_cast<double>(done) / seconds;
  return HumanSeconds(static_cast<double>(total - done) / rate);
}

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_() {}

ProgressBar::~ProgressBar() { Finish(); }

bool ProgressBar::StderrIsTerminal() {
  if (!isatty(STDERR_FILENO)) return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::strcmp(term, "dumb") != 0;
}

void ProgressBar::Update(std::uint64_t done, std::uint64_t total, bool bytes) {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  if (finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool complete = total != 0 && done >= total;
  if (drawn_ && !complete && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  Draw(done, total, bytes);
}

void ProgressBar::Draw(std::uint64_t done, std::uint64_t total, bool bytes) {
  std::string line = "\r\033[K" + label_ + " ";
  if (total != 0) {
    const double frac = done >= total ? 1.0 : static_cast<double>(done) / total;
    const int fill = static_cast<int>(frac * kBarWidth);
    line += "[";
    line.append(fill, '#');
    line.append(kBarWidth - fill, '.');
    char pct[16];
    std::snprintf(pct, sizeof pct, "] %3d%% ", static_cast<int>(frac * 100));
    line += pct;
  }
  if (bytes) {
    line += HumanBytes(done);
    if (total != 0) line += " / " + HumanBytes(total);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (secs > 0.2) line += "  " + HumanBytes(static_cast<std::uint64_t>(done / secs)) + "/s";
    if (const std::string eta = Eta(done, total, secs); !eta.empty()) line += "  ETA " + eta;
  } else {
    line += std::to_string(done);
    if (total != 0) line += "/" + std::to_string(total);
  }
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::StartTicker() {
  if (!enabled_ || ticker_.joinable()) return;
  ticker_ = std::thread([this] {
    while (!stop_ticker_.load()) {
      {
        std::lock_guard lock(mu_);
        if (finished_) return;
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now() - start_)
                              .count();
        const std::string line = "\r\033[K" + label_ + " ... " + std::to_string(secs) + "s";
        std::fputs(line.c_str(), stderr);
        std::fflush(stderr);
        drawn_ = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
}

void ProgressBar::Finish() {
  if (!enabled_) return;
  stop_ticker_.store(true);
  if (ticker_.joinable()) ticker_.join();
  std::lock_guard lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (drawn_) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }
}

}  // namespace lazyblob::cli
