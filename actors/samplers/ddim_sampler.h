// DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12) with eta = 0:
// x_prev = sqrt(a_prev) * x0_pred + sqrt(1 - a_prev) * eps_pred. Equal to diffusers'
// DDIMScheduler.step(..., eta=0) including its quirks: the previous timestep is always
// t - num_train_timesteps // n whatever the spacing, and the step past t = 0 uses
// final_alpha_cumprod (1, or alphas_cumprod[0] when set_alpha_to_one is false).
#pragma once

#include "actors/samplers/sampler.h"

namespace distri::samplers {

class DdimSampler final : public Sampler {
 public:
  explicit DdimSampler(SchedulerConfig config);

  std::string_view name() const override { return "ddim"; }
  TimestepSpacing spacing() const override { return config_.timestep_spacing.value_or(TimestepSpacing::kLeading); }
  Status SetTimesteps(int num_inference_steps) override;
  double init_noise_sigma() const override { return 1.0; }
  at::Tensor ScaleModelInput(const at::Tensor& sample, int step_index) const override;
  Result<at::Tensor> Step(const at::Tensor& model_output, int step_index, const at::Tensor& sample) override;

 private:
  std::vector<float> alphas_cumprod_;  // float32 as diffusers computes it
  float final_alpha_cumprod_ = 1.0f;
  int num_inference_steps_ = 0;
};

}  // namespace distri::samplers
