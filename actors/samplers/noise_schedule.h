// The arithmetic the samplers share, written to give the same bits as diffusers 0.42.1.
//
// diffusers mixes three kinds of arithmetic, and the results differ in the last bits if one
// kind is swapped for another, which then shows up as a different timestep after rounding or
// a 1e-6 drift per step. So each helper says which kind it reproduces:
//   * torch float32 (betas, alphas_cumprod, sigmas): computed here with the same ATen ops on
//     CPU tensors, so the same kernels run;
//   * numpy float64 (timestep spacing, np.interp, Karras sigmas): plain double arithmetic in
//     numpy's order of operations (np.linspace, np.arange, np.round = round-half-to-even);
//   * 0-d float32 tensors (per-step coefficients): C++ float, with log/exp through ATen because
//     its vectorised log/exp are not always correctly rounded like libm's.
// Internal to actors/samplers.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "actors/samplers/scheduler_config.h"
#include "runtime/common/status.h"

namespace distri::samplers::detail {

// torch float32 [T] betas for the config (trained_betas, linear, scaled_linear,
// squaredcos_cap_v2), rescaled to zero terminal SNR when the config asks for it.
at::Tensor Betas(const SchedulerConfig& config);
// torch.cumprod(1 - betas) in float32.
at::Tensor AlphasCumprod(const at::Tensor& betas);
// ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 in float32, as a vector (training order).
std::vector<float> TrainSigmas(const at::Tensor& alphas_cumprod);

// numpy emulation (float64).
std::vector<double> NpLinspace(double start, double stop, int64_t num);
std::vector<double> NpArange(double start, double stop, double step);
double NpRound(double x);  // half to even
// np.interp(x, arange(len(fp)), fp) for one point.
double NpInterpIndex(double x, const std::vector<double>& fp);
// Karras et al. (2022) eq. 5 with rho = 7 over `n` points from sigma_max down to sigma_min.
std::vector<double> KarrasSigmas(double sigma_min, double sigma_max, int64_t n);
// diffusers' _sigma_to_t: the fractional training timestep of `sigma`, by linear interpolation
// in log-sigma. `log_sigmas` are float32 logs of the training sigmas (numpy float32 np.log).
double SigmaToT(double sigma, const std::vector<float>& log_sigmas);

// 0-d float32 tensor ops through ATen (see the file comment).
float TorchLog(float x);
float TorchExp(float x);

// Timesteps of `n` inference steps over `train_steps` training steps in diffusers' spacings,
// as float64 values before the final cast (to int64, or float32 for Euler), largest first.
// DdimStyleTimesteps: DDIMScheduler's and EulerDiscreteScheduler's formulas (n points; only
// DDIM rounds linspace). DpmSolverTimesteps: DPMSolverMultistepScheduler's (n + 1 points up to
// `last_timestep`, the smallest dropped). Trailing spacing may give n + 1 values, the last -1,
// exactly as numpy does in diffusers (see Sampler::timesteps()).
std::vector<double> DdimStyleTimesteps(TimestepSpacing spacing, int64_t train_steps, int64_t n,
                                       int64_t steps_offset, bool round_linspace);
std::vector<double> DpmSolverTimesteps(TimestepSpacing spacing, int64_t train_steps,
                                       int64_t last_timestep, int64_t n, int64_t steps_offset);

// Common checks of SetTimesteps: 1 <= n <= num_train_timesteps.
Status CheckStepCount(const SchedulerConfig& config, int64_t n);

}  // namespace distri::samplers::detail
