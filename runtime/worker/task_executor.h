// The seam between the actor host (runtime/worker, no LibTorch) and what an actor computes
// (the denoise actor in actors/worker). Contract: docs/runtime-design.md, "Executor seam" and
// "Kept gangs".
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "runtime/channel/channel.h"
#include "runtime/common/status.h"
#include "runtime/wire/limits.h"
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

// Called after each denoising step: `step` steps of `total` are done (1..total). `preview`
// is empty, or (rank 0, jobs with JobSpec.preview_every) a small PNG of the current latent
// for the host to put in TaskProgress.preview (<= wire::kMaxPreviewBytes). A std::function
// that also takes the older (step, total) callables, and may be called as progress(step, total).
class ProgressFn {
 public:
  ProgressFn() = default;
  ProgressFn(std::nullptr_t) {}  // NOLINT: as std::function
  template <typename F>
    requires std::invocable<F&, int, int, const std::string&>
  ProgressFn(F f) : fn_(std::move(f)) {}  // NOLINT: implicit, as std::function
  template <typename F>
    requires(std::invocable<F&, int, int> && !std::invocable<F&, int, int, const std::string&>)
  ProgressFn(F f)  // NOLINT
      : fn_([f = std::move(f)](int step, int total, const std::string&) mutable { f(step, total); }) {}

  void operator()(int step, int total, const std::string& preview = std::string()) const {
    fn_(step, total, preview);
  }
  explicit operator bool() const { return static_cast<bool>(fn_); }

 private:
  std::function<void(int step, int total, const std::string& preview)> fn_;
};

// Polled between steps: true once the task is cancelled (by the head, a newer task, or the
// watchdog); the executor then returns Cancelled as soon as it can.
using CancelFn = std::function<bool()>;

// The channels of one gang as this rank holds them. The actor host owns them and keeps them
// across the tasks of the same gang (a later job on the same gang reuses them: no rendezvous,
// no communicator init); the executor borrows them (see TaskExecutor::ReleaseGang).
// Abort (the host's watchdog and cancel) reaches every channel of the set.
class GangChannels {
 public:
  virtual ~GangChannels() = default;
  // The channel among all ranks of the gang; its rank() is the task's rank. Never null.
  virtual channel::Channel* gang() = 0;
  // This rank's channel among the `size` ranks of CFG group `group` (`rank` = its index in the
  // group), for the patch exchanges of a CFG-split gang (parallel::ParallelOptions). Made on
  // first use over the gang's rendezvous (every rank of the group asks at the same point of
  // the same job) and kept with the set: later calls, in this task or a later task of the
  // gang, return the same channel. Task thread only.
  // Errors: Aborted (the set was aborted), FailedPrecondition (`group` was made with another
  // rank or size), InvalidArgument, and the channel's connection errors (DeadlineExceeded,
  // Unavailable).
  virtual Result<channel::Channel*> Group(int group, int rank, int size) = 0;
};

class TaskExecutor {
 public:
  virtual ~TaskExecutor() = default;
  // Runs one rank of a task. `gang` is null for a gang of one; it may be the same set that
  // earlier tasks of the same gang got (see GangChannels). `progress(step, total[, preview])` is
  // called after each step (rank 0 adds a preview every task.job.preview_every steps); `cancelled()` is polled between steps. Rank 0 returns the encoded image;
  // other ranks return an empty TaskOutput.
  // Called from the actor host's task thread, one task at a time.
  virtual Result<TaskOutput> Run(const wire::AssignTask& task, GangChannels* gang, const ProgressFn& progress,
                                 const CancelFn& cancelled) = 0;
  // The host is about to destroy the gang channels it passed to Run so far (the next task is
  // of another gang or a gang of one, a task failed or was cancelled, the actor registered
  // again, or it is stopping). The executor drops everything that refers to them (a warm
  // generator over the gang's channel). Task thread only, never during Run.
  virtual void ReleaseGang() {}
};

}  // namespace distri::worker
