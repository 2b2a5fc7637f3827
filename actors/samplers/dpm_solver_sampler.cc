#include "actors/samplers/dpm_solver_sampler.h"

#include <cmath>

#include "actors/samplers/noise_schedule.h"

namespace distri::samplers {
namespace {

// VP parametrisation of a sigma: alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha_t,
// in float32 like diffusers' 0-d tensors.
struct AlphaSigma {
  float alpha;
  float sigma;
  float lambda;  // log(alpha) - log(sigma); +inf at sigma = 0
};

AlphaSigma ToAlphaSigma(float sigma) {
  AlphaSigma r;
  r.alpha = 1.0f / std::sqrt(sigma * sigma + 1.0f);
  r.sigma = sigma * r.alpha;
  r.lambda = detail::TorchLog(r.alpha) - detail::TorchLog(r.sigma);
  return r;
}

}  // namespace

DpmSolverSampler::DpmSolverSampler(SchedulerConfig config) : Sampler(std::move(config)) {
  at::Tensor acp = detail::AlphasCumprod(detail::Betas(config_));
  if (config_.rescale_betas_zero_snr) acp[-1] = std::ldexp(1.0, -24);
  lambda_t_ = at::log(at::sqrt(acp)) - at::log(at::sqrt(1 - acp));
  train_sigmas_ = detail::TrainSigmas(acp);
}

void DpmSolverSampler::Reset() {
  prev_x0_ = at::Tensor();
  lower_order_nums_ = 0;
  next_step_ = 0;
}

Status DpmSolverSampler::SetTimesteps(int n) {
  DISTRI_RETURN_IF_ERROR(detail::CheckStepCount(config_, n));
  const int64_t train = config_.num_train_timesteps;
  // lambda_min_clipped (default -inf: no clipping) cuts off the noisiest training steps.
  const int64_t clipped =
      at::searchsorted(at::flip(lambda_t_, {0}), at::Scalar(config_.lambda_min_clipped)).item<int64_t>();
  const int64_t last_timestep = train - clipped;
  if (last_timestep < 1) {
    return Status::InvalidArgument(config_.source + ": lambda_min_clipped " +
                                   std::to_string(config_.lambda_min_clipped) + " clips every training step");
  }
  std::vector<double> t =
      detail::DpmSolverTimesteps(spacing(), train, last_timestep, n, config_.steps_offset);
  std::vector<double> sigmas;
  if (config_.use_karras_sigmas) {
    const double lo = config_.sigma_min.value_or(train_sigmas_.front());
    const double hi = config_.sigma_max.value_or(train_sigmas_.back());
    sigmas = detail::KarrasSigmas(lo, hi, n);
    std::vector<float> log_sigmas(train_sigmas_.size());
    for (size_t i = 0; i < log_sigmas.size(); ++i) log_sigmas[i] = std::log(train_sigmas_[i]);
    t.resize(sigmas.size());
    for (size_t i = 0; i < sigmas.size(); ++i) {
      t[i] = detail::SigmaToT(sigmas[i], log_sigmas);
      // diffusers rounds unless the schedule is the cosine one (then the cast truncates).
      if (config_.beta_schedule != BetaSchedule::kSquaredCosCapV2) t[i] = detail::NpRound(t[i]);
    }
  } else {
    const std::vector<double> train_sigmas(train_sigmas_.begin(), train_sigmas_.end());
    for (double v : t) sigmas.push_back(detail::NpInterpIndex(v, train_sigmas));
  }
  sigmas_.clear();
  for (double s : sigmas) sigmas_.push_back(static_cast<float>(s));
  sigmas_.push_back(config_.final_sigmas_type == FinalSigmas::kZero ? 0.0f : train_sigmas_.front());
  std::vector<int64_t> ints;
  for (double v : t) ints.push_back(static_cast<int64_t>(v));  // numpy float -> int64 truncates
  timesteps_ = at::tensor(ints, at::TensorOptions().dtype(at::kLong));
  Reset();
  return Status::Ok();
}

at::Tensor DpmSolverSampler::ScaleModelInput(const at::Tensor& sample, int step_index) const {
  DISTRI_CHECK(step_index >= 0 && step_index < num_steps(), "dpmpp_2m: step index out of range");
  return sample;
}

at::Tensor DpmSolverSampler::ConvertModelOutput(const at::Tensor& model_output, const at::Tensor& sample,
                                                int step_index) const {
  const AlphaSigma s = ToAlphaSigma(sigmas_[step_index]);
  switch (config_.prediction_type) {
    case PredictionType::kEpsilon:
      return (sample - model_output * static_cast<double>(s.sigma)) / static_cast<double>(s.alpha);
    case PredictionType::kVPrediction:
      return sample * static_cast<double>(s.alpha) - model_output * static_cast<double>(s.sigma);
    case PredictionType::kSample:
      break;
  }
  return model_output;
}

Result<at::Tensor> DpmSolverSampler::Step(const at::Tensor& model_output, int step_index, const at::Tensor& in_sample) {
  DISTRI_RETURN_IF_ERROR(CheckStepArgs(model_output, step_index, in_sample));
  if (step_index == 0) {
    Reset();
  } else if (step_index != next_step_) {
    return Status::FailedPrecondition("dpmpp_2m: step " + std::to_string(step_index) + " after step " +
                                      std::to_string(next_step_ - 1) +
                                      " (the multistep solver needs the steps in order, starting at 0)");
  }
  const int n = num_steps();
  const bool last = step_index == n - 1;
  const bool lower_order_final =
      last && (config_.euler_at_final || (config_.lower_order_final && n < 15) ||
               config_.final_sigmas_type == FinalSigmas::kZero);

  at::Tensor x0 = ConvertModelOutput(model_output, in_sample, step_index);
  const at::Tensor sample = in_sample.to(at::kFloat);
  const AlphaSigma t = ToAlphaSigma(sigmas_[step_index + 1]);
  const AlphaSigma s0 = ToAlphaSigma(sigmas_[step_index]);
  const float h = t.lambda - s0.lambda;
  // x_t = (sigma_t / sigma_s0) x - alpha_t (e^{-h} - 1) D0 [- 0.5 alpha_t (e^{-h} - 1) D1]
  const float ratio = t.sigma / s0.sigma;
  const float b = t.alpha * (detail::TorchExp(-h) - 1.0f);
  at::Tensor x_t;
  if (lower_order_nums_ < 1 || lower_order_final) {
    x_t = sample * static_cast<double>(ratio) - x0 * static_cast<double>(b);
  } else {
    const AlphaSigma s1 = ToAlphaSigma(sigmas_[step_index - 1]);
    const float h0 = s0.lambda - s1.lambda;
    const float r0 = h0 / h;
    const at::Tensor d1 = (x0 - prev_x0_) * static_cast<double>(1.0f / r0);
    x_t = sample * static_cast<double>(ratio) - x0 * static_cast<double>(b) - d1 * static_cast<double>(0.5f * b);
  }
  prev_x0_ = x0;
  if (lower_order_nums_ < 2) ++lower_order_nums_;
  next_step_ = step_index + 1;
  return x_t.to(model_output.scalar_type());
}

}  // namespace distri::samplers
