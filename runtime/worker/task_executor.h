// The seam between the actor host (runtime/worker, no LibTorch) and what an actor computes
// (the denoise actor in actors/worker). Contract: docs/runtime-design.md, "Executor seam".
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "runtime/channel/channel.h"
#include "runtime/common/status.h"
#include "runtime/wire/task_messages.h"
#include "runtime/wire/types.h"

namespace distri::worker {

// What one rank of a task produced. Rank 0 fills the image; other ranks leave it empty.
struct TaskOutput {
  wire::OutputFormat format = wire::OutputFormat::kPng;
  std::string image;     // encoded as `format`; empty on ranks other than 0
  uint32_t width = 0;    // pixels of `image`
  uint32_t height = 0;
  double denoise_ms = 0; // time in the denoising loop
  double decode_ms = 0;  // VAE decode + encoding (rank 0)
};

// Called after each denoising step: `step` steps of `total` are done (1..total).
using ProgressFn = std::function<void(int step, int total)>;
// Polled between steps: true once the task is cancelled (by the head, a newer task, or the
// watchdog); the executor then returns Cancelled as soon as it can.
using CancelFn = std::function<bool()>;

class TaskExecutor {
 public:
  virtual ~TaskExecutor() = default;
  // Runs one rank of a task. `channel` is null for a gang of one. `progress(step, total)`
  // is called after each step; `cancelled()` is polled between steps. Rank 0 returns the
  // encoded image; other ranks return an empty TaskOutput.
  // Called from the actor host's task thread, one task at a time.
  virtual Result<TaskOutput> Run(const wire::AssignTask& task, channel::Channel* channel,
                                 const ProgressFn& progress, const CancelFn& cancelled) = 0;
};

}  // namespace distri::worker
