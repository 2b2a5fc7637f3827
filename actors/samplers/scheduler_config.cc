#include "actors/samplers/scheduler_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "actors/model/json_config.h"

namespace distri::samplers {
namespace {

// Python's json module writes -Infinity/Infinity/NaN, which JSON does not allow; diffusers saves
// `"lambda_min_clipped": -Infinity` in every DPMSolverMultistepScheduler config. Outside strings
// they become null, i.e. "use the default": the default of lambda_min_clipped is -inf, and no
// other key we read has a meaningful infinite value.
std::string ReplacePythonJsonTokens(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    bool replaced = false;
    for (std::string_view token : {"-Infinity", "Infinity", "NaN"}) {
      if (text.substr(i, token.size()) == token) {
        out += "null";
        i += token.size() - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) out += c;
  }
  return out;
}

template <typename Enum>
struct EnumName {
  Enum value;
  std::string_view name;
};

constexpr EnumName<BetaSchedule> kBetaSchedules[] = {
    {BetaSchedule::kLinear, "linear"},
    {BetaSchedule::kScaledLinear, "scaled_linear"},
    {BetaSchedule::kSquaredCosCapV2, "squaredcos_cap_v2"}};
constexpr EnumName<PredictionType> kPredictionTypes[] = {
    {PredictionType::kEpsilon, "epsilon"},
    {PredictionType::kVPrediction, "v_prediction"},
    {PredictionType::kSample, "sample"}};
constexpr EnumName<TimestepSpacing> kSpacings[] = {
    {TimestepSpacing::kLeading, "leading"},
    {TimestepSpacing::kTrailing, "trailing"},
    {TimestepSpacing::kLinspace, "linspace"}};
constexpr EnumName<FinalSigmas> kFinalSigmas[] = {
    {FinalSigmas::kZero, "zero"}, {FinalSigmas::kSigmaMin, "sigma_min"}};

template <typename Enum, size_t N>
std::string_view NameOf(const EnumName<Enum> (&table)[N], Enum v) {
  for (const auto& e : table) {
    if (e.value == v) return e.name;
  }
  return "?";
}

// Reads an enum-valued string key; absent keeps `*out`.
template <typename Enum, size_t N>
Status ReadEnum(const model::JsonConfig& json, std::string_view key,
                const EnumName<Enum> (&table)[N], Enum* out) {
  if (!json.Has(key)) return Status::Ok();
  DISTRI_ASSIGN_OR_RETURN(std::string s, json.GetString(key));
  std::string expected;
  for (size_t i = 0; i < N; ++i) {
    if (table[i].name == s) {
      *out = table[i].value;
      return Status::Ok();
    }
    expected += (i == 0 ? "" : (i + 1 == N ? " or " : ", ")) + std::string(table[i].name);
  }
  return json.Error(key, "unsupported value \"" + s + "\" (expected " + expected + ")");
}

// A boolean option whose `true` selects an algorithm we do not implement.
Status RejectIfTrue(const model::JsonConfig& json, std::string_view key, std::string_view why) {
  DISTRI_ASSIGN_OR_RETURN(bool on, json.GetBool(key, false));
  if (on) return json.Error(key, "true is not supported (" + std::string(why) + ")");
  return Status::Ok();
}

// A string option of which only `supported` is implemented.
Status RequireString(const model::JsonConfig& json, std::string_view key, std::string_view supported) {
  if (!json.Has(key)) return Status::Ok();
  DISTRI_ASSIGN_OR_RETURN(std::string s, json.GetString(key));
  if (s != supported) {
    return json.Error(key, "unsupported value \"" + s + "\" (only \"" + std::string(supported) +
                               "\" is implemented)");
  }
  return Status::Ok();
}

Status Invalid(const SchedulerConfig& c, std::string_view key, const std::string& what) {
  return Status::InvalidArgument(c.source + ": " + std::string(key) + ": " + what);
}

}  // namespace

std::string_view BetaScheduleName(BetaSchedule v) { return NameOf(kBetaSchedules, v); }
std::string_view PredictionTypeName(PredictionType v) { return NameOf(kPredictionTypes, v); }
std::string_view TimestepSpacingName(TimestepSpacing v) { return NameOf(kSpacings, v); }

Result<SchedulerConfig> SchedulerConfigFromJson(const model::JsonConfig& json) {
  SchedulerConfig c;
  c.source = json.name();
  DISTRI_ASSIGN_OR_RETURN(c.class_name, json.GetString("_class_name", ""));
  DISTRI_ASSIGN_OR_RETURN(c.num_train_timesteps, json.GetInt("num_train_timesteps", c.num_train_timesteps));
  DISTRI_ASSIGN_OR_RETURN(c.beta_start, json.GetDouble("beta_start", c.beta_start));
  DISTRI_ASSIGN_OR_RETURN(c.beta_end, json.GetDouble("beta_end", c.beta_end));
  DISTRI_RETURN_IF_ERROR(ReadEnum(json, "beta_schedule", kBetaSchedules, &c.beta_schedule));
  if (json.Has("trained_betas")) {
    DISTRI_ASSIGN_OR_RETURN(c.trained_betas, json.GetDoubleList("trained_betas"));
  }
  DISTRI_ASSIGN_OR_RETURN(c.rescale_betas_zero_snr, json.GetBool("rescale_betas_zero_snr", false));
  DISTRI_RETURN_IF_ERROR(ReadEnum(json, "prediction_type", kPredictionTypes, &c.prediction_type));
  if (json.Has("timestep_spacing")) {
    TimestepSpacing spacing{};
    DISTRI_RETURN_IF_ERROR(ReadEnum(json, "timestep_spacing", kSpacings, &spacing));
    c.timestep_spacing = spacing;
  }
  DISTRI_ASSIGN_OR_RETURN(c.steps_offset, json.GetInt("steps_offset", 0));
  DISTRI_ASSIGN_OR_RETURN(c.set_alpha_to_one, json.GetBool("set_alpha_to_one", c.set_alpha_to_one));
  DISTRI_ASSIGN_OR_RETURN(c.clip_sample, json.GetBool("clip_sample", c.clip_sample));
  DISTRI_ASSIGN_OR_RETURN(c.clip_sample_range, json.GetDouble("clip_sample_range", c.clip_sample_range));
  DISTRI_ASSIGN_OR_RETURN(c.use_karras_sigmas, json.GetBool("use_karras_sigmas", false));
  if (json.Has("sigma_min")) {
    DISTRI_ASSIGN_OR_RETURN(c.sigma_min, json.GetDouble("sigma_min"));
  }
  if (json.Has("sigma_max")) {
    DISTRI_ASSIGN_OR_RETURN(c.sigma_max, json.GetDouble("sigma_max"));
  }
  DISTRI_RETURN_IF_ERROR(ReadEnum(json, "final_sigmas_type", kFinalSigmas, &c.final_sigmas_type));
  DISTRI_ASSIGN_OR_RETURN(c.lower_order_final, json.GetBool("lower_order_final", c.lower_order_final));
  DISTRI_ASSIGN_OR_RETURN(c.euler_at_final, json.GetBool("euler_at_final", c.euler_at_final));
  DISTRI_ASSIGN_OR_RETURN(c.lambda_min_clipped, json.GetDouble("lambda_min_clipped", c.lambda_min_clipped));

  // Variants we do not implement: refuse rather than sample with a different schedule.
  DISTRI_RETURN_IF_ERROR(RejectIfTrue(json, "thresholding", "dynamic thresholding is for pixel-space models"));
  DISTRI_RETURN_IF_ERROR(RejectIfTrue(json, "use_exponential_sigmas", "only Karras or default sigmas"));
  DISTRI_RETURN_IF_ERROR(RejectIfTrue(json, "use_beta_sigmas", "only Karras or default sigmas"));
  DISTRI_RETURN_IF_ERROR(RejectIfTrue(json, "use_lu_lambdas", "only Karras or default sigmas"));
  DISTRI_RETURN_IF_ERROR(RejectIfTrue(json, "use_flow_sigmas", "flow-matching models are not supported"));
  DISTRI_RETURN_IF_ERROR(RejectIfTrue(json, "use_dynamic_shifting", "flow-matching models are not supported"));
  DISTRI_RETURN_IF_ERROR(RequireString(json, "interpolation_type", "linear"));
  DISTRI_RETURN_IF_ERROR(RequireString(json, "timestep_type", "discrete"));
  if (json.Has("variance_type")) {
    return json.Error("variance_type", "learned variance is not supported (expected null)");
  }
  DISTRI_RETURN_IF_ERROR(ValidateSchedulerConfig(c));
  return c;
}

Result<SchedulerConfig> ParseSchedulerConfig(std::string_view text, const std::string& name) {
  DISTRI_ASSIGN_OR_RETURN(model::JsonConfig json,
                          model::JsonConfig::Parse(ReplacePythonJsonTokens(text), name));
  return SchedulerConfigFromJson(json);
}

Result<SchedulerConfig> LoadSchedulerConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open scheduler config " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseSchedulerConfig(ss.str(), path);
}

Status ValidateSchedulerConfig(const SchedulerConfig& c) {
  if (c.num_train_timesteps < 2 || c.num_train_timesteps > 100000) {
    return Invalid(c, "num_train_timesteps",
                   "expected 2..100000, found " + std::to_string(c.num_train_timesteps));
  }
  if (!c.trained_betas.empty()) {
    if (static_cast<int64_t>(c.trained_betas.size()) != c.num_train_timesteps) {
      return Invalid(c, "trained_betas",
                     "expected num_train_timesteps = " + std::to_string(c.num_train_timesteps) +
                         " entries, found " + std::to_string(c.trained_betas.size()));
    }
    for (double b : c.trained_betas) {
      if (!(b > 0.0 && b < 1.0)) return Invalid(c, "trained_betas", "every beta must be in (0, 1), found " + std::to_string(b));
    }
  } else if (c.beta_schedule != BetaSchedule::kSquaredCosCapV2) {
    if (!(c.beta_start > 0.0 && c.beta_start < 1.0)) {
      return Invalid(c, "beta_start", "expected a value in (0, 1), found " + std::to_string(c.beta_start));
    }
    if (!(c.beta_end > 0.0 && c.beta_end < 1.0)) {
      return Invalid(c, "beta_end", "expected a value in (0, 1), found " + std::to_string(c.beta_end));
    }
  }
  if (c.steps_offset < 0 || c.steps_offset >= c.num_train_timesteps) {
    return Invalid(c, "steps_offset", "expected 0..num_train_timesteps-1, found " + std::to_string(c.steps_offset));
  }
  if (c.clip_sample && !(c.clip_sample_range > 0.0)) {
    return Invalid(c, "clip_sample_range", "expected a positive value, found " + std::to_string(c.clip_sample_range));
  }
  if (c.sigma_min && !(*c.sigma_min > 0.0)) {
    return Invalid(c, "sigma_min", "expected a positive value, found " + std::to_string(*c.sigma_min));
  }
  if (c.sigma_max && c.sigma_min && !(*c.sigma_max > *c.sigma_min)) {
    return Invalid(c, "sigma_max", "expected a value above sigma_min");
  }
  if (std::isnan(c.lambda_min_clipped)) return Invalid(c, "lambda_min_clipped", "is NaN");
  return Status::Ok();
}

Result<SchedulerConfig> DefaultSchedulerConfig(std::string_view family) {
  // What the public checkpoints' scheduler_config.json files say (SD 1.5 ships a PNDM file,
  // SD 2.x a DDIM file, SDXL an Euler file): same betas, no clipping, steps_offset 1.
  SchedulerConfig c;
  c.source = "<default " + std::string(family) + " scheduler>";
  c.num_train_timesteps = 1000;
  c.beta_start = 0.00085;
  c.beta_end = 0.012;
  c.beta_schedule = BetaSchedule::kScaledLinear;
  c.steps_offset = 1;
  c.set_alpha_to_one = false;
  c.clip_sample = false;
  if (family == "sd1" || family == "sd2") {
    c.class_name = family == "sd1" ? "PNDMScheduler" : "DDIMScheduler";
  } else if (family == "sd2-v") {
    c.class_name = "DDIMScheduler";
    c.prediction_type = PredictionType::kVPrediction;
  } else if (family == "sdxl") {
    c.class_name = "EulerDiscreteScheduler";
    c.timestep_spacing = TimestepSpacing::kLeading;
  } else {
    return Status::InvalidArgument("unknown model family '" + std::string(family) +
                                   "' for a default scheduler (expected sd1, sd2, sd2-v or sdxl)");
  }
  return c;
}

}  // namespace distri::samplers
