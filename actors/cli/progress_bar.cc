#include "actors/cli/progress_bar.h"

#include <unistd.h>

namespace distri::cli {

ProgressBar::ProgressBar(std::string label, bool force)
    : label_(std::move(label)), enabled_(force || ::isatty(STDERR_FILENO)), start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(int done, int total) {
  if (!enabled_ || total <= 0) return;
  constexpr int kWidth = 30;
  int filled = static_cast<int>(static_cast<long>(done) * kWidth / total);
  std::string bar(kWidth, ' ');
  for (int i = 0; i < filled; ++i) bar[i] = '=';
  if (filled < kWidth) bar[filled] = '>';
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "\r%s [%s] %d/%d", label_.c_str(), bar.c_str(), done, total);
  if (done > 0) std::fprintf(stderr, "  %.2f s/step", secs / done);
  std::fflush(stderr);
}

void ProgressBar::Finish() {
  if (enabled_ && !finished_) std::fprintf(stderr, "\n");
  finished_ = true;
}

}  // namespace distri::cli
