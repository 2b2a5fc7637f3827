// Saturating deadlines: timeouts may be Handle::kForever (milliseconds::max()), which must not
// overflow when added to now().
#pragma once

#include <algorithm>
#include <chrono>

namespace distri::channel {

using Clock = std::chrono::steady_clock;

inline Clock::time_point DeadlineAfter(std::chrono::milliseconds timeout) {
  const auto now = Clock::now();
  if (timeout.count() <= 0) return now;
  const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now);
  return timeout >= room ? Clock::time_point::max() : now + timeout;
}

// Milliseconds left until `deadline` (0 once it has passed).
inline std::chrono::milliseconds TimeLeft(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return std::chrono::milliseconds::max();
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

}  // namespace distri::channel
