// The noise-schedule configuration of a diffusers scheduler (`<model>/scheduler/scheduler_config.json`).
//
// One struct serves every sampler: the keys mean the same thing in DDIMScheduler,
// EulerDiscreteScheduler and DPMSolverMultistepScheduler, and a model folder ships one file
// whatever sampler the user picks (diffusers does the same with `XScheduler.from_config(cfg)`:
// keys the file has override, keys it lacks take the target class's defaults). The only such
// default that differs between our samplers is `timestep_spacing` (DDIM: leading, Euler and
// DPM-Solver: linspace), so it stays optional here and each sampler fills it in.
//
// Keys that select an algorithm variant we do not implement are rejected when the file is read
// (thresholding, exponential/beta/lu/flow sigmas, continuous timesteps, learned variance,
// log_linear interpolation), so a model never silently samples with the wrong schedule. Keys of
// other schedulers (skip_prk_steps, solver_order, algorithm_type, ...) are ignored: the sampler
// name, not the file, picks the algorithm.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"

namespace distri::model {
class JsonConfig;
}

namespace distri::samplers {

enum class BetaSchedule { kLinear, kScaledLinear, kSquaredCosCapV2 };
enum class PredictionType { kEpsilon, kVPrediction, kSample };
enum class TimestepSpacing { kLeading, kTrailing, kLinspace };
// The sigma after the last step (Euler, DPM-Solver): 0, or the smallest training sigma.
enum class FinalSigmas { kZero, kSigmaMin };

// Field names and defaults are diffusers' (0.42.1) for DDIMScheduler; see each comment where
// the Euler/DPM-Solver classes differ.
struct SchedulerConfig {
  std::string class_name;  // "_class_name", informational ("" when built in code)
  std::string source;      // the file, for error messages ("<code>" when built in code)

  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001;
  double beta_end = 0.02;
  BetaSchedule beta_schedule = BetaSchedule::kLinear;
  std::vector<double> trained_betas;  // non-empty: overrides the three fields above
  bool rescale_betas_zero_snr = false;

  PredictionType prediction_type = PredictionType::kEpsilon;
  std::optional<TimestepSpacing> timestep_spacing;  // unset: the sampler's diffusers default
  int64_t steps_offset = 0;

  // DDIM only.
  bool set_alpha_to_one = true;
  bool clip_sample = true;
  double clip_sample_range = 1.0;

  // Euler and DPM-Solver only.
  bool use_karras_sigmas = false;
  std::optional<double> sigma_min;  // Karras range overrides (unset: the training range)
  std::optional<double> sigma_max;
  FinalSigmas final_sigmas_type = FinalSigmas::kZero;

  // DPM-Solver only.
  bool lower_order_final = true;
  bool euler_at_final = false;
  double lambda_min_clipped = -std::numeric_limits<double>::infinity();
};

// Reads and validates a scheduler_config.json. Errors name the file and the key, e.g.
// "sd/scheduler/scheduler_config.json: beta_schedule: unsupported value \"cosine\" (expected
// linear, scaled_linear or squaredcos_cap_v2)". Python's non-standard JSON tokens that diffusers
// writes (`-Infinity` for lambda_min_clipped) are accepted.
Result<SchedulerConfig> LoadSchedulerConfig(const std::string& path);
// The same from text; `name` stands for the file in error messages.
Result<SchedulerConfig> ParseSchedulerConfig(std::string_view text, const std::string& name);
Result<SchedulerConfig> SchedulerConfigFromJson(const model::JsonConfig& json);

// Checks ranges and consistency (also run by MakeSampler, for configs built in code).
Status ValidateSchedulerConfig(const SchedulerConfig& config);

// The schedulers the public checkpoints ship, for tests and for models without a scheduler
// folder: "sd1" (SD 1.x: scaled_linear 0.00085..0.012, steps_offset 1, no clipping),
// "sd2" (SD 2.x base, epsilon), "sd2-v" (SD 2.x 768, v_prediction), "sdxl" (as sd1 plus
// timestep_spacing leading, as SDXL's EulerDiscreteScheduler file has it).
Result<SchedulerConfig> DefaultSchedulerConfig(std::string_view family);

std::string_view BetaScheduleName(BetaSchedule v);
std::string_view PredictionTypeName(PredictionType v);
std::string_view TimestepSpacingName(TimestepSpacing v);

}  // namespace distri::samplers
