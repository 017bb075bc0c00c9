// Minimal logging seam for core/: core links no logging library, so the engine reports
// through a process-wide sink function that tools/ points at spdlog. Without a sink,
// messages at or above the minimum level go to stderr.
//
// Thread-safety: all functions may be called from any thread at any time. The sink is a
// plain function pointer (no captured state to outlive); it must itself be thread-safe.
#ifndef LAZYBLOB_CORE_LOG_H_
#define LAZYBLOB_CORE_LOG_H_

#include <string_view>

namespace lazyblob {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

using LogSink = void (*)(LogLevel level, std::string_view message);

// nullptr restores the default stderr sink.
void SetLogSink(LogSink sink);
// Messages below `level` are dropped before formatting cost is paid (check LogEnabled).
void SetMinLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void Log(LogLevel level, std::string_view message);

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_LOG_H_
