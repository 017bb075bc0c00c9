#include "core/log.h"

#include <atomic>
#include <cstdio>

namespace lazyblob {
namespace {

void StderrSink(LogLevel level, std::string_view message) {
  static constexpr const char* kNames[] = {"debug", "info", "warn", "error", "off"};
  std::fprintf(stderr, "[%s] %.*s\n", kNames[static_cast<int>(level)],
               static_cast<int>(message.size()), message.data());
}

std::atomic<LogSink> g_sink{&StderrSink};
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};

}  // namespace

void SetLogSink(LogSink sink) { g_sink.store(sink != nullptr ? sink : &StderrSink); }

void SetMinLogLevel(LogLevel level) { g_min_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) {
  return level != LogLevel::kOff && static_cast<int>(level) >= g_min_level.load();
}

void Log(LogLevel level, std::string_view message) {
  if (LogEnabled(level)) g_sink.load()(level, message);
}

}  // namespace lazyblob
