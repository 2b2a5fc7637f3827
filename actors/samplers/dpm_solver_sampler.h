// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
// Probabilistic Models", Algorithm 2, midpoint form): a second-order multistep solver in
// log-SNR time lambda = log(alpha / sigma) on the data prediction x0. The first step, and the
// last one when lower_order_final/euler_at_final/final_sigmas_type "zero" ask for it, are
// first order (DDIM in disguise). Equal to diffusers' DPMSolverMultistepScheduler with
// algorithm_type dpmsolver++, solver_order 2, solver_type midpoint (its defaults), with or
// without Karras sigmas.
#pragma once

#include "actors/samplers/sampler.h"

namespace distri::samplers {

class DpmSolverSampler final : public Sampler {
 public:
  explicit DpmSolverSampler(SchedulerConfig config);

  std::string_view name() const override { return "dpmpp_2m"; }
  TimestepSpacing spacing() const override { return config_.timestep_spacing.value_or(TimestepSpacing::kLinspace); }
  Status SetTimesteps(int num_inference_steps) override;
  void Reset() override;
  double init_noise_sigma() const override { return 1.0; }
  at::Tensor ScaleModelInput(const at::Tensor& sample, int step_index) const override;
  // Also FailedPrecondition when step_index is neither 0 nor the step after the previous one.
  Result<at::Tensor> Step(const at::Tensor& model_output, int step_index, const at::Tensor& sample) override;

  // num_steps() + 1 float32 sigmas (sigma = sqrt((1 - alpha_bar) / alpha_bar)), the last 0 or
  // sigma_min per final_sigmas_type.
  const std::vector<float>& sigmas() const { return sigmas_; }

 private:
  // The data prediction x0 from the model output (dpmsolver++ works on x0, not epsilon).
  at::Tensor ConvertModelOutput(const at::Tensor& model_output, const at::Tensor& sample, int step_index) const;

  std::vector<float> train_sigmas_;  // training order, float32
  at::Tensor lambda_t_;              // float32 log(alpha) - log(sigma) per training step
  std::vector<float> sigmas_;

  // Multistep state of the current trajectory.
  at::Tensor prev_x0_;      // data prediction of the previous step
  int lower_order_nums_ = 0;  // steps taken so far, saturating at the solver order (2)
  int next_step_ = 0;
};

}  // namespace distri::samplers
