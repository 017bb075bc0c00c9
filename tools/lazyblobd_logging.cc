#include "tools/lazyblobd_logging.h"

#include <unistd.h>

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>

#include "core/log.h"

namespace lazyblob {
namespace {

void SpdlogSink(LogLevel level, std::string_view message) {
  switch (level) {
    case LogLevel::kDebug:
      spdlog::debug("{}", message);
      break;
    case LogLevel::kInfo:
      spdlog::info("{}", message);
      break;
    case LogLevel::kWarn:
      spdlog::warn("{}", message);
      break;
    case LogLevel::kError:
      spdlog::error("{}", message);
      break;
    case LogLevel::kOff:
      break;
  }
}

void AppendJsonString(std::string_view s, std::string& out) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// {"time":"2025-01-02T03:04:05.678Z","level":"info","pid":123,"msg":"..."}
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto t = msg.time;
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char when[40];
    const std::size_t n = std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(when + n, sizeof when - n, ".%03dZ", static_cast<int>(ms));
    std::string line = "{\"time\":\"";
    line += when;
    line += "\",\"level\":\"";
    const auto level = spdlog::level::to_string_view(msg.level);
    line.append(level.data(), level.size());
    line += "\",\"pid\":" + std::to_string(::getpid()) + ",\"msg\":";
    AppendJsonString(std::string_view(msg.payload.data(), msg.payload.size()), line);
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// Passes lines to `inner` under the LogRateLimiter.
class RateLimitedSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit RateLimitedSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    const LogRateLimiter::Verdict v = limiter_.Admit(text, LogRateLimiter::Clock::now());
    if (v.suppressed > 0) {
      const std::string note =
          std::to_string(v.suppressed) +
          " similar lines suppressed (rate limit) before: " + std::string(text);
      spdlog::details::log_msg summary(msg.logger_name, spdlog::level::warn, note);
      inner_->log(summary);
    }
    if (v.show) inner_->log(msg);
  }
  void flush_() override { inner_->flush(); }
  void set_pattern_(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter_(std::unique_ptr<spdlog::formatter> f) override {
    inner_->set_formatter(std::move(f));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
  LogRateLimiter limiter_;
};

}  // namespace

LogRateLimiter::Verdict LogRateLimiter::Admit(std::string_view line, Clock::time_point now) {
  if (entries_.size() >= options_.max_keys) {
    std::erase_if(entries_, [&](const auto& e) {
      return now - e.second.window_start >= options_.window && e.second.suppressed == 0;
    });
    if (entries_.size() >= options_.max_keys) entries_.clear();  // a flood of distinct lines
  }
  auto [it, fresh] = entries_.try_emplace(KeyOf(line));
  Entry& e = it->second;
  Verdict v;
  if (fresh || now - e.window_start >= options_.window) {
    v.suppressed = e.suppressed;
    e = Entry{now, 0, 0};
  }
  if (e.shown < options_.burst) {
    ++e.shown;
    v.show = true;
  } else {
    ++e.suppressed;
  }
  return v;
}

std::string LogRateLimiter::KeyOf(std::string_view line) {
  std::string key;
  bool in_number = false;
  for (const char c : line) {
    const bool digit = c >= '0' && c <= '9';
    if (digit && !in_number) key += '#';
    if (!digit) key += c;
    in_number = digit;
  }
  return key;
}

void ApplyLogLevel(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
  LogLevel l = LogLevel::kInfo;
  if (level == "debug") l = LogLevel::kDebug;
  if (level == "warn") l = LogLevel::kWarn;
  if (level == "error") l = LogLevel::kError;
  if (level == "off") l = LogLevel::kOff;
  SetMinLogLevel(l);
}

void SetupLogging(const std::string& level, const std::string& format) {
  auto stderr_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto sink = std::make_shared<RateLimitedSink>(stderr_sink);
  auto logger = std::make_shared<spdlog::logger>("lazyblobd", sink);
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else if (std::getenv("JOURNAL_STREAM") != nullptr) {
    logger->set_pattern("%l: %v");  // journald adds time and pid
  } else {
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] [pid %P] %v");
  }
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  SetLogSink(&SpdlogSink);
  ApplyLogLevel(level);
}

}  // namespace lazyblob
