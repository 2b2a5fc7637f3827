// Euler's method on the probability-flow ODE in the sigma parametrisation of Karras et al.
// (2022), Algorithm 2 without churn: d = (x - x0_pred) / sigma, x_next = x + d * (sigma_next -
// sigma). Equal to diffusers' EulerDiscreteScheduler (s_churn = 0, interpolation_type linear,
// timestep_type discrete), with or without Karras sigmas. The UNet sees x / sqrt(sigma^2 + 1)
// and a float (possibly fractional) timestep.
#pragma once

#include "actors/samplers/sampler.h"

namespace distri::samplers {

class EulerSampler final : public Sampler {
 public:
  explicit EulerSampler(SchedulerConfig config);

  std::string_view name() const override { return "euler"; }
  TimestepSpacing spacing() const override { return config_.timestep_spacing.value_or(TimestepSpacing::kLinspace); }
  Status SetTimesteps(int num_inference_steps) override;
  double init_noise_sigma() const override;
  at::Tensor ScaleModelInput(const at::Tensor& sample, int step_index) const override;
  Result<at::Tensor> Step(const at::Tensor& model_output, int step_index, const at::Tensor& sample) override;

  // num_steps() + 1 float32 sigmas, the last one 0 (or sigma_min with final_sigmas_type).
  const std::vector<float>& sigmas() const { return sigmas_; }

 private:
  std::vector<float> train_sigmas_;  // training order (sigma grows with t), float32
  float sigma_last_ = 0.0f;          // the appended final sigma
  std::vector<float> sigmas_;
};

}  // namespace distri::samplers
