#include "actors/samplers/scheduler_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

namespace distri::samplers {
namespace {

Result<SchedulerConfig> Parse(const std::string& text) {
  return ParseSchedulerConfig(text, "m/scheduler/scheduler_config.json");
}

// The error of parsing `text`, which must fail.
std::string ErrorOf(const std::string& text) {
  auto r = Parse(text);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? "" : r.status().message();
}

TEST(SchedulerConfig, ReadsAnSdxlFile) {
  auto c = Parse(R"({"_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false,
    "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
    "sample_max_value": 1.0, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
    "timestep_spacing": "leading", "trained_betas": null, "use_karras_sigmas": false})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->class_name, "EulerDiscreteScheduler");
  EXPECT_EQ(c->source, "m/scheduler/scheduler_config.json");
  EXPECT_EQ(c->beta_schedule, BetaSchedule::kScaledLinear);
  EXPECT_DOUBLE_EQ(c->beta_start, 0.00085);
  EXPECT_DOUBLE_EQ(c->beta_end, 0.012);
  EXPECT_EQ(c->steps_offset, 1);
  EXPECT_FALSE(c->set_alpha_to_one);
  EXPECT_FALSE(c->clip_sample);
  EXPECT_EQ(c->timestep_spacing, TimestepSpacing::kLeading);
  EXPECT_TRUE(c->trained_betas.empty());
}

TEST(SchedulerConfig, DefaultsAreDiffusersDdimDefaults) {
  auto c = Parse("{}");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->num_train_timesteps, 1000);
  EXPECT_EQ(c->beta_schedule, BetaSchedule::kLinear);
  EXPECT_DOUBLE_EQ(c->beta_start, 0.0001);
  EXPECT_DOUBLE_EQ(c->beta_end, 0.02);
  EXPECT_EQ(c->prediction_type, PredictionType::kEpsilon);
  EXPECT_FALSE(c->timestep_spacing.has_value());  // each sampler picks its own default
  EXPECT_TRUE(c->clip_sample);
  EXPECT_TRUE(c->set_alpha_to_one);
  EXPECT_EQ(c->final_sigmas_type, FinalSigmas::kZero);
}

TEST(SchedulerConfig, AcceptsPythonInfinityTokens) {
  // diffusers saves DPMSolverMultistepScheduler configs with `-Infinity`.
  auto c = Parse(R"({"lambda_min_clipped": -Infinity, "x": "-Infinity NaN", "prediction_type": "v_prediction"})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(std::isinf(c->lambda_min_clipped) && c->lambda_min_clipped < 0);
  EXPECT_EQ(c->prediction_type, PredictionType::kVPrediction);
  auto finite = Parse(R"({"lambda_min_clipped": -5.1})");
  ASSERT_TRUE(finite.ok());
  EXPECT_DOUBLE_EQ(finite->lambda_min_clipped, -5.1);
}

TEST(SchedulerConfig, RejectsUnknownValuesNamingFileAndKey) {
  EXPECT_EQ(ErrorOf(R"({"beta_schedule": "cosine"})"),
            "m/scheduler/scheduler_config.json: beta_schedule: unsupported value \"cosine\" "
            "(expected linear, scaled_linear or squaredcos_cap_v2)");
  EXPECT_EQ(ErrorOf(R"({"prediction_type": "flow_prediction"})"),
            "m/scheduler/scheduler_config.json: prediction_type: unsupported value \"flow_prediction\" "
            "(expected epsilon, v_prediction or sample)");
  EXPECT_EQ(ErrorOf(R"({"timestep_spacing": "karras"})"),
            "m/scheduler/scheduler_config.json: timestep_spacing: unsupported value \"karras\" "
            "(expected leading, trailing or linspace)");
  EXPECT_EQ(ErrorOf(R"({"beta_schedule": 3})"),
            "m/scheduler/scheduler_config.json: beta_schedule: expected a string, found 3");
  EXPECT_EQ(ErrorOf(R"({"num_train_timesteps": 1})"),
            "m/scheduler/scheduler_config.json: num_train_timesteps: expected 2..100000, found 1");
  EXPECT_EQ(ErrorOf(R"({"num_train_timesteps": 3, "trained_betas": [0.1, 0.2]})"),
            "m/scheduler/scheduler_config.json: trained_betas: expected num_train_timesteps = 3 entries, found 2");
  EXPECT_NE(ErrorOf(R"({"beta_start": -0.1})").find("beta_start: expected a value in (0, 1)"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"steps_offset": -1})").find("steps_offset"), std::string::npos);
  EXPECT_NE(ErrorOf("{not json").find("m/scheduler/scheduler_config.json"), std::string::npos);
}

TEST(SchedulerConfig, RejectsUnimplementedVariants) {
  EXPECT_EQ(ErrorOf(R"({"thresholding": true})"),
            "m/scheduler/scheduler_config.json: thresholding: true is not supported "
            "(dynamic thresholding is for pixel-space models)");
  EXPECT_TRUE(Parse(R"({"thresholding": false, "dynamic_thresholding_ratio": 0.995})").ok());
  for (const char* key : {"use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas", "use_flow_sigmas",
                          "use_dynamic_shifting"}) {
    EXPECT_NE(ErrorOf(std::string("{\"") + key + "\": true}").find(key), std::string::npos) << key;
  }
  EXPECT_EQ(ErrorOf(R"({"interpolation_type": "log_linear"})"),
            "m/scheduler/scheduler_config.json: interpolation_type: unsupported value \"log_linear\" "
            "(only \"linear\" is implemented)");
  EXPECT_NE(ErrorOf(R"({"timestep_type": "continuous"})").find("timestep_type"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"variance_type": "learned_range"})").find("variance_type"), std::string::npos);
  EXPECT_TRUE(Parse(R"({"variance_type": null})").ok());
  EXPECT_NE(ErrorOf(R"({"final_sigmas_type": "sigma_max"})").find("final_sigmas_type"), std::string::npos);
}

TEST(SchedulerConfig, LoadsFilesAndReportsMissingOnes) {
  const std::string path = ::testing::TempDir() + "/distri_scheduler_config_test.json";
  {
    std::ofstream out(path);
    out << R"({"beta_schedule": "squaredcos_cap_v2", "rescale_betas_zero_snr": true})";
  }
  auto c = LoadSchedulerConfig(path);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->beta_schedule, BetaSchedule::kSquaredCosCapV2);
  EXPECT_TRUE(c->rescale_betas_zero_snr);
  EXPECT_EQ(c->source, path);
  std::remove(path.c_str());
  auto missing = LoadSchedulerConfig(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(path), std::string::npos);
}

TEST(SchedulerConfig, DefaultFamilies) {
  for (const char* family : {"sd1", "sd2", "sd2-v", "sdxl"}) {
    auto c = DefaultSchedulerConfig(family);
    ASSERT_TRUE(c.ok()) << family;
    EXPECT_EQ(c->beta_schedule, BetaSchedule::kScaledLinear);
    EXPECT_EQ(c->steps_offset, 1);
    EXPECT_FALSE(c->clip_sample);
    EXPECT_TRUE(ValidateSchedulerConfig(*c).ok());
  }
  EXPECT_EQ(DefaultSchedulerConfig("sd2-v")->prediction_type, PredictionType::kVPrediction);
  EXPECT_EQ(DefaultSchedulerConfig("sdxl")->timestep_spacing, TimestepSpacing::kLeading);
  EXPECT_FALSE(DefaultSchedulerConfig("sd1")->timestep_spacing.has_value());
  auto bad = DefaultSchedulerConfig("sd3");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "unknown model family 'sd3' for a default scheduler (expected sd1, sd2, sd2-v or sdxl)");
}

}  // namespace
}  // namespace distri::samplers
