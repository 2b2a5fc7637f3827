// Logging to stderr with level, time, process role and rank.
//
//   DISTRI_LOG(INFO) << "loaded " << n << " tensors";
//
// prints one line:
//
//   I 2026-11-27T15:40:00.123Z head r0 pid=4242 loader.cc:42] loaded 1680 tensors
//
// The level comes from DISTRI_LOG_LEVEL (debug, info, warning, error; default info) unless
// SetLogLevel is called. Each process sets its role ("head", "node", "actor", "client",
// "distri") and, for actors, its rank in the current gang. Lines are written with one write(2)
// under a mutex, so lines from threads never interleave. Thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "runtime/common/status.h"

namespace distri {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

// Parses "debug" / "info" / "warning" (or "warn") / "error" / "off", case-insensitive.
std::optional<LogLevel> ParseLogLevel(std::string_view text);
void SetLogLevel(LogLevel level);
// A program's --log-level flag: empty leaves the level alone; otherwise sets it, or returns
// InvalidArgument "--log-level: expected debug, info, warning or error, got '<text>'".
Status ApplyLogLevelFlag(std::string_view text);
LogLevel GetLogLevel();
void SetLogRole(std::string_view role);
// Rank in the current gang; -1 (default) leaves it out of the prefix.
void SetLogRank(int rank);
// Replaces stderr as the destination (tests); an empty function restores stderr.
void SetLogSink(std::function<void(std::string_view line)> sink);
bool LogEnabled(LogLevel level);

namespace internal {
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
// Lets the macro below be an expression of type void in both branches.
struct LogVoidify {
  void operator&(std::ostream&) {}
};
}  // namespace internal

}  // namespace distri

#define DISTRI_LOG_LEVEL_DEBUG ::distri::LogLevel::kDebug
#define DISTRI_LOG_LEVEL_INFO ::distri::LogLevel::kInfo
#define DISTRI_LOG_LEVEL_WARNING ::distri::LogLevel::kWarning
#define DISTRI_LOG_LEVEL_ERROR ::distri::LogLevel::kError

#define DISTRI_LOG(severity)                                            \
  !::distri::LogEnabled(DISTRI_LOG_LEVEL_##severity)                    \
      ? (void)0                                                         \
      : ::distri::internal::LogVoidify() &                              \
            ::distri::internal::LogMessage(DISTRI_LOG_LEVEL_##severity, \
                                           __FILE__, __LINE__).stream()
