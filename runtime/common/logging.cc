#include "runtime/common/logging.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

namespace distri {
namespace {

struct LogState {
  std::mutex mu;
  std::string role = "distri";
  int rank = -1;
  std::function<void(std::string_view)> sink;
};

LogState& State() {
  static LogState* s = new LogState();  // never destroyed: logging works during exit
  return *s;
}

LogLevel LevelFromEnv() {
  const char* env = std::getenv("DISTRI_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  return ParseLogLevel(env).value_or(LogLevel::kInfo);
}

std::atomic<int>& LevelRef() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnv())};
  return level;
}

char LevelLetter(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return 'D';
    case LogLevel::kInfo: return 'I';
    case LogLevel::kWarning: return 'W';
    case LogLevel::kError: return 'E';
    default: return '?';
  }
}

}  // namespace

std::optional<LogLevel> ParseLogLevel(std::string_view text) {
  std::string t(text);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "debug") return LogLevel::kDebug;
  if (t == "info") return LogLevel::kInfo;
  if (t == "warning" || t == "warn") return LogLevel::kWarning;
  if (t == "error") return LogLevel::kError;
  if (t == "off" || t == "none") return LogLevel::kOff;
  return std::nullopt;
}

void SetLogLevel(LogLevel level) { LevelRef().store(static_cast<int>(level)); }
Status ApplyLogLevelFlag(std::string_view text) {
  if (text.empty()) return Status::Ok();
  const std::optional<LogLevel> level = ParseLogLevel(text);
  if (!level) {
    return Status::InvalidArgument("--log-level: expected debug, info, warning or error, got '" + std::string(text) +
                                   "'");
  }
  SetLogLevel(*level);
  return Status::Ok();
}

LogLevel GetLogLevel() { return static_cast<LogLevel>(LevelRef().load()); }
bool LogEnabled(LogLevel level) {
  return level != LogLevel::kOff && static_cast<int>(level) >= LevelRef().load();
}

void SetLogRole(std::string_view role) {
  std::lock_guard<std::mutex> lock(State().mu);
  State().role = std::string(role);
}

void SetLogRank(int rank) {
  std::lock_guard<std::mutex> lock(State().mu);
  State().rank = rank;
}

void SetLogSink(std::function<void(std::string_view)> sink) {
  std::lock_guard<std::mutex> lock(State().mu);
  State().sink = std::move(sink);
}

namespace internal {

LogMessage::LogMessage(LogLevel level, const char* file, int line) : level_(level) {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t secs = system_clock::to_time_t(now);
  int millis = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[32];
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  std::string role;
  int rank;
  {
    std::lock_guard<std::mutex> lock(State().mu);
    role = State().role;
    rank = State().rank;
  }
  char ms[8];
  std::snprintf(ms, sizeof(ms), ".%03dZ", millis);
  stream_ << LevelLetter(level) << ' ' << ts << ms << ' ' << role;
  if (rank >= 0) stream_ << " r" << rank;
  stream_ << " pid=" << ::getpid() << ' ' << base << ':' << line << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  std::string line = stream_.str();
  std::lock_guard<std::mutex> lock(State().mu);
  if (State().sink) {
    State().sink(line);
    return;
  }
  // One write: lines from several threads or processes sharing stderr do not interleave.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace internal
}  // namespace distri
