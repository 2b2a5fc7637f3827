#include "runtime/worker/step_watchdog.h"

#include <algorithm>

namespace distri::worker {

using std::chrono::milliseconds;

void StepWatchdog::Start(Clock::time_point now, int total_steps) {
  last_mark_ = now;
  steps_done_ = 0;
  total_steps_ = total_steps;
  slowest_ = milliseconds(0);
}

void StepWatchdog::Step(Clock::time_point now, int step) {
  if (last_mark_ && steps_done_ > 0) {
    // The first step carries the setup costs; only later steps measure the step time.
    slowest_ = std::max(slowest_, std::chrono::duration_cast<milliseconds>(now - *last_mark_));
  }
  last_mark_ = now;
  steps_done_ = std::max(steps_done_, step);
}

milliseconds StepWatchdog::Bound() const {
  if (steps_done_ == 0 || steps_done_ >= total_steps_) return options_.first_step_bound;
  const auto scaled = milliseconds(static_cast<int64_t>(static_cast<double>(slowest_.count()) * options_.factor));
  return std::max(options_.min_step_bound, scaled);
}

milliseconds StepWatchdog::since_last_mark(Clock::time_point now) const {
  if (!last_mark_) return milliseconds(0);
  return std::chrono::duration_cast<milliseconds>(now - *last_mark_);
}

bool StepWatchdog::Expired(Clock::time_point now) const {
  if (!options_.enabled || !last_mark_) return false;
  return now - *last_mark_ > Bound();
}

}  // namespace distri::worker
