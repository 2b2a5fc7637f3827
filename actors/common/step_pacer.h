// Keeps the host one denoising step ahead of the device, no more and no less.
#pragma once

#include <c10/core/Device.h>

#include <array>

#include "runtime/common/status.h"

namespace distri {

// A denoising loop that waits for the device at every step (a blocking copy, .item(), a
// synchronize) leaves the GPU idle while the host launches the next step: on 4 H100s that was
// ~3.6 ms of a 17 ms step. Without any wait the host runs many steps ahead, and progress
// reports ("step 30 of 50") describe launches, not work done. The pacer keeps exactly one step
// queued behind the running one: after queuing step i the host waits until step i-1 has
// finished, so the device never runs dry and a progress report is at most one step early.
// CPU devices compute synchronously: every call is a no-op there.
class StepPacer {
 public:
  explicit StepPacer(const c10::Device& device);
  ~StepPacer();
  StepPacer(const StepPacer&) = delete;
  StepPacer& operator=(const StepPacer&) = delete;

  // Call after queuing a step's work on the current stream: returns once the step queued
  // before it has finished on the device. Returns the number of steps known finished; an error
  // names the CUDA failure (a device fault surfaces at the step it happened in).
  Result<int> Queued();
  // Waits for every queued step; returns the number of steps finished (all queued).
  Result<int> Finish();

 private:
  c10::Device device_;
  int queued_ = 0;
#ifdef DISTRI_HAVE_CUDA
  std::array<void*, 2> events_{nullptr, nullptr};  // cudaEvent_t, alternating by step parity
#endif
};

}  // namespace distri
