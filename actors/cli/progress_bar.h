// A one-line terminal progress bar on stderr: "[=========>         ] 23/50 steps  0.41 s/step".
// Draws only when stderr is a terminal (unless forced); otherwise prints nothing, so logs and
// CI output stay clean.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace distri::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label, bool force = false);
  ~ProgressBar();
  void Update(int done, int total);
  void Finish();

 private:
  std::string label_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace distri::cli
