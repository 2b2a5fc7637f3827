#include "actors/samplers/noise_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace distri::samplers::detail {
namespace {

// Nichol & Dhariwal (2021), eq. 17: alpha_bar(t) = cos^2((t + s) / (1 + s) * pi / 2), s = 0.008,
// with betas capped at 0.999 to avoid the singularity at t = 1. Float64 like diffusers' Python.
std::vector<double> SquaredCosCapV2Betas(int64_t n) {
  auto alpha_bar = [](double t) { return std::pow(std::cos((t + 0.008) / 1.008 * std::numbers::pi / 2), 2.0); };
  std::vector<double> betas(n);
  for (int64_t i = 0; i < n; ++i) {
    double t1 = static_cast<double>(i) / static_cast<double>(n);
    double t2 = static_cast<double>(i + 1) / static_cast<double>(n);
    betas[i] = std::min(1 - alpha_bar(t2) / alpha_bar(t1), 0.999);
  }
  return betas;
}

// Lin et al. (2023), "Common Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1:
// shift and scale sqrt(alpha_bar) so the last step has zero SNR, keeping the first unchanged.
at::Tensor RescaleZeroTerminalSnr(const at::Tensor& betas) {
  at::Tensor alphas_bar_sqrt = at::cumprod(1.0 - betas, 0).sqrt();
  at::Tensor first = alphas_bar_sqrt[0].clone();
  at::Tensor last = alphas_bar_sqrt[-1].clone();
  alphas_bar_sqrt -= last;
  alphas_bar_sqrt *= first / (first - last);
  at::Tensor alphas_bar = at::pow(alphas_bar_sqrt, 2);
  at::Tensor alphas = alphas_bar.slice(0, 1) / alphas_bar.slice(0, 0, -1);
  alphas = at::cat({alphas_bar.slice(0, 0, 1), alphas});
  return 1 - alphas;
}

}  // namespace

at::Tensor Betas(const SchedulerConfig& c) {
  const at::TensorOptions f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor betas;
  if (!c.trained_betas.empty()) {
    betas = at::tensor(c.trained_betas, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat);
  } else if (c.beta_schedule == BetaSchedule::kLinear) {
    betas = at::linspace(c.beta_start, c.beta_end, c.num_train_timesteps, f32);
  } else if (c.beta_schedule == BetaSchedule::kScaledLinear) {
    // Python's `beta_start**0.5` is libm pow, computed in double before linspace.
    betas = at::pow(at::linspace(std::pow(c.beta_start, 0.5), std::pow(c.beta_end, 0.5),
                                 c.num_train_timesteps, f32),
                    2);
  } else {
    betas = at::tensor(SquaredCosCapV2Betas(c.num_train_timesteps), at::TensorOptions().dtype(at::kDouble))
                .to(at::kFloat);
  }
  if (c.rescale_betas_zero_snr) betas = RescaleZeroTerminalSnr(betas);
  return betas;
}

at::Tensor AlphasCumprod(const at::Tensor& betas) { return at::cumprod(1.0 - betas, 0); }

std::vector<float> TrainSigmas(const at::Tensor& alphas_cumprod) {
  at::Tensor s = at::pow((1 - alphas_cumprod) / alphas_cumprod, 0.5).contiguous();
  const float* p = s.data_ptr<float>();
  return std::vector<float>(p, p + s.numel());
}

std::vector<double> NpLinspace(double start, double stop, int64_t num) {
  // numpy: step = (stop - start) / (num - 1); y[i] = i * step + start; y[-1] = stop.
  std::vector<double> y(num);
  if (num == 1) {
    y[0] = start;
    return y;
  }
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (int64_t i = 0; i < num; ++i) y[i] = static_cast<double>(i) * step + start;
  y[num - 1] = stop;
  return y;
}

std::vector<double> NpArange(double start, double stop, double step) {
  // numpy: length = ceil((stop - start) / step); the fill repeats the first step as
  // delta = (start + step) - start, then y[i] = start + i * delta.
  double len_f = std::ceil((stop - start) / step);
  int64_t len = len_f > 0 ? static_cast<int64_t>(len_f) : 0;
  std::vector<double> y(len);
  if (len == 0) return y;
  y[0] = start;
  if (len == 1) return y;
  y[1] = start + step;
  const double delta = y[1] - start;
  for (int64_t i = 2; i < len; ++i) y[i] = start + static_cast<double>(i) * delta;
  return y;
}

double NpRound(double x) { return std::nearbyint(x); }  // FE_TONEAREST: ties to even

double NpInterpIndex(double x, const std::vector<double>& fp) {
  const int64_t n = static_cast<int64_t>(fp.size());
  if (!(x > 0.0)) return fp[0];  // left of (or at) xp[0]
  if (x >= static_cast<double>(n - 1)) return fp[n - 1];
  const int64_t j = static_cast<int64_t>(std::floor(x));
  if (static_cast<double>(j) == x) return fp[j];
  const double slope = (fp[j + 1] - fp[j]) / 1.0;
  return slope * (x - static_cast<double>(j)) + fp[j];
}

std::vector<double> KarrasSigmas(double sigma_min, double sigma_max, int64_t n) {
  constexpr double kRho = 7.0;
  const std::vector<double> ramp = NpLinspace(0.0, 1.0, n);
  const double min_inv_rho = std::pow(sigma_min, 1.0 / kRho);
  const double max_inv_rho = std::pow(sigma_max, 1.0 / kRho);
  std::vector<double> sigmas(n);
  for (int64_t i = 0; i < n; ++i) sigmas[i] = std::pow(max_inv_rho + ramp[i] * (min_inv_rho - max_inv_rho), kRho);
  return sigmas;
}

double SigmaToT(double sigma, const std::vector<float>& log_sigmas) {
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  const int64_t n = static_cast<int64_t>(log_sigmas.size());
  // The last index whose log-sigma is <= log_sigma (0 if none), at most n - 2.
  int64_t low = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (log_sigma - static_cast<double>(log_sigmas[i]) >= 0) low = i;
  }
  low = std::min(low, n - 2);
  const int64_t high = low + 1;
  const float lo = log_sigmas[low];
  const float hi = log_sigmas[high];
  // numpy: (float32 - float64) / (float32 - float32): the denominator is rounded to float32.
  double w = (static_cast<double>(lo) - log_sigma) / static_cast<double>(static_cast<float>(lo - hi));
  w = std::clamp(w, 0.0, 1.0);
  return (1 - w) * static_cast<double>(low) + w * static_cast<double>(high);
}

float TorchLog(float x) { return at::log(at::scalar_tensor(x, at::kFloat)).item<float>(); }
float TorchExp(float x) { return at::exp(at::scalar_tensor(x, at::kFloat)).item<float>(); }

std::vector<double> DdimStyleTimesteps(TimestepSpacing spacing, int64_t train_steps, int64_t n,
                                       int64_t steps_offset, bool round_linspace) {
  std::vector<double> t;
  switch (spacing) {
    case TimestepSpacing::kLinspace:
      t = NpLinspace(0.0, static_cast<double>(train_steps - 1), n);
      if (round_linspace) {
        for (double& v : t) v = NpRound(v);
      }
      std::reverse(t.begin(), t.end());
      break;
    case TimestepSpacing::kLeading: {
      const int64_t ratio = train_steps / n;
      for (int64_t i = n - 1; i >= 0; --i) t.push_back(static_cast<double>(i * ratio + steps_offset));
      break;
    }
    case TimestepSpacing::kTrailing:
      t = NpArange(static_cast<double>(train_steps), 0.0,
                   -(static_cast<double>(train_steps) / static_cast<double>(n)));
      for (double& v : t) v = NpRound(v) - 1;
      break;
  }
  return t;
}

std::vector<double> DpmSolverTimesteps(TimestepSpacing spacing, int64_t train_steps,
                                       int64_t last_timestep, int64_t n, int64_t steps_offset) {
  std::vector<double> t;
  switch (spacing) {
    case TimestepSpacing::kLinspace: {
      std::vector<double> y = NpLinspace(0.0, static_cast<double>(last_timestep - 1), n + 1);
      for (int64_t i = n; i >= 1; --i) t.push_back(NpRound(y[i]));  // reversed, last dropped
      break;
    }
    case TimestepSpacing::kLeading: {
      const int64_t ratio = last_timestep / (n + 1);
      for (int64_t i = n; i >= 1; --i) t.push_back(static_cast<double>(i * ratio + steps_offset));
      break;
    }
    case TimestepSpacing::kTrailing:
      t = NpArange(static_cast<double>(last_timestep), 0.0,
                   -(static_cast<double>(train_steps) / static_cast<double>(n)));
      for (double& v : t) v = NpRound(v) - 1;
      break;
  }
  return t;
}

Status CheckStepCount(const SchedulerConfig& c, int64_t n) {
  if (n < 1 || n > c.num_train_timesteps) {
    return Status::InvalidArgument("num_inference_steps must be in 1.." + std::to_string(c.num_train_timesteps) +
                                   " (num_train_timesteps of " + c.source + "), got " + std::to_string(n));
  }
  return Status::Ok();
}

}  // namespace distri::samplers::detail
