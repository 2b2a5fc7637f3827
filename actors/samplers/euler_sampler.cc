#include "actors/samplers/euler_sampler.h"

#include <algorithm>
#include <cmath>

#include "actors/samplers/noise_schedule.h"

namespace distri::samplers {

EulerSampler::EulerSampler(SchedulerConfig config) : Sampler(std::move(config)) {
  at::Tensor acp = detail::AlphasCumprod(detail::Betas(config_));
  // With zero terminal SNR the last sigma would be infinite; diffusers pins alpha_bar to 2^-24.
  if (config_.rescale_betas_zero_snr) acp[-1] = std::ldexp(1.0, -24);
  train_sigmas_ = detail::TrainSigmas(acp);
  sigma_last_ = config_.final_sigmas_type == FinalSigmas::kZero ? 0.0f : train_sigmas_[0];
  // Before SetTimesteps diffusers holds every training sigma (for init_noise_sigma).
  sigmas_.assign(train_sigmas_.rbegin(), train_sigmas_.rend());
  sigmas_.push_back(0.0f);
}

Status EulerSampler::SetTimesteps(int n) {
  DISTRI_RETURN_IF_ERROR(detail::CheckStepCount(config_, n));
  const int64_t train = config_.num_train_timesteps;
  // Timesteps are float32 in diffusers; the sigma interpolation reads the float32 values.
  std::vector<double> t = detail::DdimStyleTimesteps(spacing(), train, n, config_.steps_offset,
                                                     /*round_linspace=*/false);
  // (Timesteps past the last training step, e.g. leading spacing with steps_offset 1 and
  // n = num_train_timesteps, are allowed as in diffusers: np.interp clamps their sigma.)
  for (double& v : t) v = static_cast<double>(static_cast<float>(v));
  const std::vector<double> train_sigmas(train_sigmas_.begin(), train_sigmas_.end());
  std::vector<double> sigmas;
  for (double v : t) sigmas.push_back(detail::NpInterpIndex(v, train_sigmas));
  if (config_.use_karras_sigmas) {
    // Karras spacing between the interpolated extremes; timesteps follow from the sigmas.
    const double lo = config_.sigma_min.value_or(sigmas.back());
    const double hi = config_.sigma_max.value_or(sigmas.front());
    sigmas = detail::KarrasSigmas(lo, hi, static_cast<int64_t>(t.size()));
    std::vector<float> log_sigmas(train_sigmas_.size());
    std::transform(train_sigmas_.begin(), train_sigmas_.end(), log_sigmas.begin(),
                   [](float s) { return std::log(s); });
    for (size_t i = 0; i < sigmas.size(); ++i) t[i] = detail::SigmaToT(sigmas[i], log_sigmas);
  }
  sigmas_.clear();
  for (double s : sigmas) sigmas_.push_back(static_cast<float>(s));
  sigmas_.push_back(sigma_last_);
  std::vector<float> tf(t.begin(), t.end());
  timesteps_ = at::tensor(tf, at::TensorOptions().dtype(at::kFloat));
  return Status::Ok();
}

double EulerSampler::init_noise_sigma() const {
  const float max_sigma = *std::max_element(sigmas_.begin(), sigmas_.end());
  if (spacing() == TimestepSpacing::kLeading) return std::sqrt(max_sigma * max_sigma + 1.0f);
  return max_sigma;
}

at::Tensor EulerSampler::ScaleModelInput(const at::Tensor& sample, int step_index) const {
  DISTRI_CHECK(step_index >= 0 && step_index < num_steps(), "euler: step index out of range");
  const float sigma = sigmas_[step_index];
  return sample / static_cast<double>(std::sqrt(sigma * sigma + 1.0f));
}

Result<at::Tensor> EulerSampler::Step(const at::Tensor& model_output, int step_index, const at::Tensor& in_sample) {
  DISTRI_RETURN_IF_ERROR(CheckStepArgs(model_output, step_index, in_sample));
  const at::Tensor sample = in_sample.to(at::kFloat);
  const float sigma = sigmas_[step_index];
  const float sigma_hat = sigma * 1.0f;  // gamma = 0 (no churn)
  at::Tensor x0;
  switch (config_.prediction_type) {
    case PredictionType::kEpsilon:
      x0 = sample - model_output * static_cast<double>(sigma_hat);
      break;
    case PredictionType::kVPrediction: {
      const float s2p1 = sigma * sigma + 1.0f;
      const float c_out = -sigma / std::sqrt(s2p1);
      x0 = model_output * static_cast<double>(c_out) + sample / static_cast<double>(s2p1);
      break;
    }
    case PredictionType::kSample:
      x0 = model_output;
      break;
  }
  const at::Tensor derivative = (sample - x0) / static_cast<double>(sigma_hat);
  const float dt = sigmas_[step_index + 1] - sigma_hat;
  return (sample + derivative * static_cast<double>(dt)).to(model_output.scalar_type());
}

}  // namespace distri::samplers
