// The per-step progress watchdog of a task (docs/runtime-design.md): a hung collective (a
// peer died without closing its connection, a GPU stuck in a kernel) must not hold a gang
// forever. The actor host checks Expired() periodically; when it fires, the host aborts the
// gang's channel and reports the task as DeadlineExceeded.
//
// Bound on the time between two progress marks:
//   before the first step and after the last one (text encoding, channel warm-up, CUDA graph
//   capture, VAE decode): first_step_bound;
//   between steps: max(min_step_bound, factor * the slowest step seen in this task).
// Pure logic with an injectable clock reading; not thread-safe (the host guards it).
#pragma once

#include <chrono>
#include <optional>

namespace distri::worker {

struct WatchdogOptions {
  bool enabled = true;
  double factor = 10.0;
  std::chrono::milliseconds min_step_bound{60'000};
  std::chrono::milliseconds first_step_bound{600'000};
};

class StepWatchdog {
 public:
  using Clock = std::chrono::steady_clock;
  explicit StepWatchdog(WatchdogOptions options = {}) : options_(options) {}

  // A task starts (after its channel is built).
  void Start(Clock::time_point now, int total_steps);
  // Step `step` of `total` finished.
  void Step(Clock::time_point now, int step);
  // The current bound on the time since the last mark.
  std::chrono::milliseconds Bound() const;
  // True when the task started, is not finished, and has gone Bound() without a mark.
  bool Expired(Clock::time_point now) const;
  std::chrono::milliseconds slowest_step() const { return slowest_; }
  std::chrono::milliseconds since_last_mark(Clock::time_point now) const;

 private:
  WatchdogOptions options_;
  std::optional<Clock::time_point> last_mark_;
  int steps_done_ = 0;
  int total_steps_ = 0;
  std::chrono::milliseconds slowest_{0};
};

}  // namespace distri::worker
