#include "actors/samplers/ddim_sampler.h"

#include <cmath>

#include "actors/samplers/noise_schedule.h"

namespace distri::samplers {

DdimSampler::DdimSampler(SchedulerConfig config) : Sampler(std::move(config)) {
  at::Tensor acp = detail::AlphasCumprod(detail::Betas(config_)).contiguous();
  alphas_cumprod_.assign(acp.data_ptr<float>(), acp.data_ptr<float>() + acp.numel());
  final_alpha_cumprod_ = config_.set_alpha_to_one ? 1.0f : alphas_cumprod_[0];
}

Status DdimSampler::SetTimesteps(int n) {
  DISTRI_RETURN_IF_ERROR(detail::CheckStepCount(config_, n));
  const int64_t train = config_.num_train_timesteps;
  std::vector<double> t = detail::DdimStyleTimesteps(spacing(), train, n, config_.steps_offset,
                                                     /*round_linspace=*/true);
  std::vector<int64_t> ints;
  for (double v : t) {
    auto ti = static_cast<int64_t>(v);
    // diffusers would fail with an IndexError on alphas_cumprod[t] at the first step.
    if (ti >= train) {
      return Status::InvalidArgument(config_.source + ": steps_offset " + std::to_string(config_.steps_offset) +
                                     " with " + std::to_string(n) + " steps gives timestep " + std::to_string(ti) +
                                     " outside 0.." + std::to_string(train - 1));
    }
    // np.arange(T, 0, -T/n) has one element too many for some n (e.g. 61): the timestep -1,
    // which diffusers' DDIM silently reads as alphas_cumprod[-1], i.e. the noisiest step.
    if (ti < 0) {
      return Status::InvalidArgument(config_.source + ": trailing spacing with " + std::to_string(n) +
                                     " steps gives timestep " + std::to_string(ti) +
                                     " (a rounding artefact of diffusers' np.arange); choose another step count");
    }
    ints.push_back(ti);
  }
  timesteps_ = at::tensor(ints, at::TensorOptions().dtype(at::kLong));
  num_inference_steps_ = n;
  return Status::Ok();
}

at::Tensor DdimSampler::ScaleModelInput(const at::Tensor& sample, int step_index) const {
  DISTRI_CHECK(step_index >= 0 && step_index < num_steps(), "ddim: step index out of range");
  return sample;
}

Result<at::Tensor> DdimSampler::Step(const at::Tensor& model_output, int step_index, const at::Tensor& sample) {
  DISTRI_RETURN_IF_ERROR(CheckStepArgs(model_output, step_index, sample));
  const int64_t t = timesteps_[step_index].item<int64_t>();
  const int64_t prev_t = t - config_.num_train_timesteps / num_inference_steps_;
  // Scalars are 0-d float32 tensors in diffusers; float arithmetic here gives the same bits
  // (pow(x, 0.5) is sqrt in ATen).
  const float a_t = alphas_cumprod_[t];
  const float a_prev = prev_t >= 0 ? alphas_cumprod_[prev_t] : final_alpha_cumprod_;
  const float b_t = 1.0f - a_t;
  const double sqrt_a_t = std::sqrt(a_t);
  const double sqrt_b_t = std::sqrt(b_t);

  at::Tensor x0;
  at::Tensor eps;
  switch (config_.prediction_type) {
    case PredictionType::kEpsilon:
      x0 = (sample - model_output * sqrt_b_t) / sqrt_a_t;
      eps = model_output;
      break;
    case PredictionType::kSample:
      x0 = model_output;
      eps = (sample - x0 * sqrt_a_t) / sqrt_b_t;
      break;
    case PredictionType::kVPrediction:
      x0 = sample * sqrt_a_t - model_output * sqrt_b_t;
      eps = model_output * sqrt_a_t + sample * sqrt_b_t;
      break;
  }
  if (config_.clip_sample) {
    const double r = config_.clip_sample_range;
    x0 = x0.clamp(-r, r);
  }
  // eta = 0: the noise term std_dev_t vanishes, leaving the deterministic DDIM direction.
  const double dir_coef = std::sqrt((1.0f - a_prev) - 0.0f);
  const double x0_coef = std::sqrt(a_prev);
  return x0 * x0_coef + eps * dir_coef;
}

}  // namespace distri::samplers
