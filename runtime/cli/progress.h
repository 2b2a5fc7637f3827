// A one-line job progress display on stderr for `distri-cluster submit` (TTY only).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "runtime/wire/job_messages.h"

namespace distri::cli {

class ProgressLine {
 public:
  ProgressLine(std::string label, bool enabled) : label_(std::move(label)), enabled_(enabled) {}
  ~ProgressLine() { Finish(); }
  // "job 3fa2c1d0 [=====>      ] 12/30 RUNNING (attempt 1)"
  void Update(const wire::JobStatus& s) {
    if (!enabled_) return;
    constexpr int kWidth = 30;
    const int filled = s.total_steps == 0 ? 0 : static_cast<int>(kWidth * s.step / s.total_steps);
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
    std::string extra = s.state == wire::JobState::kPending ? " (queue position " + std::to_string(s.queue_position) + ")" : "";
    if (s.attempt > 0) extra += " (attempt " + std::to_string(s.attempt) + ")";
    std::fprintf(stderr, "\r%s [%s] %u/%u %s%s\033[K", label_.c_str(), bar.c_str(), s.step, s.total_steps,
                 std::string(wire::JobStateName(s.state)).c_str(), extra.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }
  void Finish() {
    if (drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
  }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
};

}  // namespace distri::cli
