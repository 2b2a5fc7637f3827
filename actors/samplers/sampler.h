// Samplers: the denoising update rules, numerically equal to diffusers 0.42.1's schedulers.
//
//   ddim      DDIMScheduler, eta = 0 (deterministic)
//   euler     EulerDiscreteScheduler (s_churn = 0: deterministic)
//   dpmpp_2m  DPMSolverMultistepScheduler, algorithm_type dpmsolver++, solver_order 2, midpoint
//
// A denoising job drives a sampler like diffusers' pipelines drive a scheduler:
//
//   DISTRI_ASSIGN_OR_RETURN(auto sampler, MakeSampler("euler", config));
//   DISTRI_RETURN_IF_ERROR(sampler->SetTimesteps(steps));
//   at::Tensor x = noise * sampler->init_noise_sigma();
//   for (int i = 0; i < sampler->num_steps(); ++i) {
//     at::Tensor eps = unet(sampler->ScaleModelInput(x, i), sampler->timestep(i), ...);
//     DISTRI_ASSIGN_OR_RETURN(x, sampler->Step(eps, i, x));
//   }
//
// Contracts:
//   * Steps are addressed by index (0 .. num_steps()-1), never by timestep value, so repeated
//     timesteps cannot be confused. Step(i) must follow Step(i-1) (DPM-Solver keeps the previous
//     model output); Step(0) starts a new trajectory and drops that history, so one sampler
//     object serves job after job. SetTimesteps and Reset also drop it.
//   * Tensors may live on any device and be fp32/fp16/bf16. Like diffusers, Euler and
//     DPM-Solver compute in float32 and return the model output's dtype; DDIM computes in the
//     sample's dtype. The per-step coefficients are host scalars (no device sync).
//   * Every operation is elementwise, so a sampler applied to a patch of the latent gives that
//     patch of the full-latent result (what patch parallelism relies on).
//   * Not thread-safe: one sampler per job at a time.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string_view>
#include <vector>

#include "actors/samplers/scheduler_config.h"
#include "runtime/common/status.h"

namespace distri::samplers {

class Sampler {
 public:
  virtual ~Sampler() = default;

  // "ddim", "euler" or "dpmpp_2m".
  virtual std::string_view name() const = 0;
  const SchedulerConfig& config() const { return config_; }
  // The timestep spacing in effect (the config's, or this sampler's diffusers default).
  virtual TimestepSpacing spacing() const = 0;

  // Computes the timesteps of a job of `num_inference_steps` (1..num_train_timesteps) and
  // clears any multistep history. Errors: InvalidArgument for a step count out of range or a
  // schedule that would index past the training timesteps (e.g. a large steps_offset).
  virtual Status SetTimesteps(int num_inference_steps) = 0;
  // Clears the multistep history, keeping the timesteps.
  virtual void Reset() {}

  // What diffusers' `scheduler.timesteps` holds after set_timesteps: a CPU tensor of int64
  // (ddim, dpmpp_2m) or float32 (euler), in denoising order (largest first). Undefined before
  // SetTimesteps. Its length is num_steps(), the requested count except where diffusers itself
  // produces another: with trailing spacing numpy's arange yields one extra timestep, -1, for
  // some counts (e.g. 61 of 1000); Euler and DPM-Solver then take n + 1 steps like diffusers,
  // DDIM rejects the count. Callers must loop over num_steps(), not the requested count.
  const at::Tensor& timesteps() const { return timesteps_; }
  int num_steps() const { return timesteps_.defined() ? static_cast<int>(timesteps_.numel()) : 0; }
  // timesteps()[step_index] as a double (exact: an integer or a float32 value), the value the
  // UNet's timestep embedding takes. Requires 0 <= step_index < num_steps().
  double timestep(int step_index) const;

  // The factor the initial Gaussian noise is multiplied by (1 for DDIM and DPM-Solver; for
  // Euler the largest sigma, or sqrt(sigma_max^2 + 1) with leading spacing, as diffusers).
  // Valid after SetTimesteps.
  virtual double init_noise_sigma() const = 0;

  // The UNet input for step `step_index`: the sample itself, or for Euler
  // sample / sqrt(sigma^2 + 1). Requires 0 <= step_index < num_steps() (DISTRI_CHECK).
  virtual at::Tensor ScaleModelInput(const at::Tensor& sample, int step_index) const = 0;

  // One denoising update: from `sample` at step `step_index` and the model's prediction for it
  // (epsilon, v or x0 per the config's prediction_type), returns the sample of the next step
  // (after the last step: the denoised latent). Errors: FailedPrecondition before
  // SetTimesteps or when steps are skipped/repeated (dpmpp_2m), InvalidArgument for an index
  // out of range or mismatched shapes.
  virtual Result<at::Tensor> Step(const at::Tensor& model_output, int step_index, const at::Tensor& sample) = 0;

 protected:
  explicit Sampler(SchedulerConfig config) : config_(std::move(config)) {}
  // Shared argument checks of Step.
  Status CheckStepArgs(const at::Tensor& model_output, int step_index, const at::Tensor& sample) const;

  SchedulerConfig config_;
  at::Tensor timesteps_;
};

// Makes a sampler by name: "ddim", "euler", "dpmpp_2m" (also "dpm++_2m", "dpmsolver++").
// Validates the config (ValidateSchedulerConfig). The sampler copies the config.
Result<std::unique_ptr<Sampler>> MakeSampler(std::string_view name, const SchedulerConfig& config);

// Names MakeSampler accepts (canonical ones), for help texts and validation upstream.
const std::vector<std::string_view>& SamplerNames();

}  // namespace distri::samplers
