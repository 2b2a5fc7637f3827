// Behaviour of the samplers apart from parity: errors, reuse across jobs, dtypes, and the
// elementwise property patch parallelism relies on. Numbers come from diffusers 0.42.1.
#include "actors/samplers/sampler.h"

#include <gtest/gtest.h>

#include <string>

#include "actors/samplers/dpm_solver_sampler.h"
#include "actors/samplers/euler_sampler.h"

namespace distri::samplers {
namespace {

SchedulerConfig Sd1() { return *DefaultSchedulerConfig("sd1"); }

std::unique_ptr<Sampler> Make(std::string_view name, const SchedulerConfig& config = Sd1()) {
  auto s = MakeSampler(name, config);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

// A short deterministic trajectory with a fake model (as in the parity test).
at::Tensor RunTrajectory(Sampler& s, const at::Tensor& noise, const at::Tensor& fixed) {
  at::Tensor x = noise * s.init_noise_sigma();
  for (int i = 0; i < s.num_steps(); ++i) {
    at::Tensor m = s.ScaleModelInput(x, i) * 0.1 + fixed * (1.0 / (1.0 + 0.1 * i));
    auto next = s.Step(m, i, x);
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    x = *next;
  }
  return x;
}

class EachSampler : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Samplers, EachSampler, ::testing::Values("ddim", "euler", "dpmpp_2m"));

TEST_P(EachSampler, RejectsBadStepCounts) {
  auto s = Make(GetParam());
  for (int n : {0, -3, 1001}) {
    Status st = s->SetTimesteps(n);
    ASSERT_FALSE(st.ok()) << n;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(st.message(), "num_inference_steps must be in 1..1000 (num_train_timesteps of <default sd1 scheduler>), got " +
                                std::to_string(n));
  }
}

TEST_P(EachSampler, StepErrors) {
  auto s = Make(GetParam());
  const at::Tensor x = at::ones({1, 4, 2, 2});
  auto before = s->Step(x, 0, x);
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s->SetTimesteps(4).ok());
  EXPECT_EQ(s->num_steps(), 4);
  EXPECT_EQ(s->Step(x, 4, x).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Step(x, -1, x).status().code(), StatusCode::kInvalidArgument);
  auto shape = s->Step(at::ones({1, 4, 2, 3}), 0, x);
  ASSERT_FALSE(shape.ok());
  EXPECT_NE(shape.status().message().find("same shape"), std::string::npos);
}

TEST_P(EachSampler, ReusableAcrossJobs) {
  auto s = Make(GetParam());
  const at::Tensor noise = at::randn({1, 4, 4, 4}, at::TensorOptions().dtype(at::kFloat));
  const at::Tensor fixed = at::randn({1, 4, 4, 4});
  ASSERT_TRUE(s->SetTimesteps(9).ok());
  at::Tensor first = RunTrajectory(*s, noise, fixed);
  at::Tensor second = RunTrajectory(*s, noise, fixed);  // Step(0) starts over
  EXPECT_TRUE(at::equal(first, second));
  ASSERT_TRUE(s->SetTimesteps(5).ok());
  RunTrajectory(*s, noise, fixed);
  ASSERT_TRUE(s->SetTimesteps(9).ok());
  EXPECT_TRUE(at::equal(RunTrajectory(*s, noise, fixed), first));
}

// Every update is elementwise: running on two halves of the latent gives the halves of the
// full result bit for bit (DistriFusion runs one patch per GPU).
TEST_P(EachSampler, PatchesGiveTheSameResult) {
  const at::Tensor noise = at::randn({1, 4, 8, 8});
  const at::Tensor fixed = at::randn({1, 4, 8, 8});
  auto full = Make(GetParam());
  auto top = Make(GetParam());
  auto bottom = Make(GetParam());
  for (auto* s : {full.get(), top.get(), bottom.get()}) ASSERT_TRUE(s->SetTimesteps(12).ok());
  at::Tensor whole = RunTrajectory(*full, noise, fixed);
  at::Tensor a = RunTrajectory(*top, noise.slice(2, 0, 4), fixed.slice(2, 0, 4));
  at::Tensor b = RunTrajectory(*bottom, noise.slice(2, 4, 8), fixed.slice(2, 4, 8));
  EXPECT_TRUE(at::equal(whole, at::cat({a, b}, 2)));
}

TEST_P(EachSampler, KeepsHalfPrecision) {
  auto s = Make(GetParam());
  ASSERT_TRUE(s->SetTimesteps(3).ok());
  const at::Tensor x = at::randn({1, 4, 2, 2}).to(at::kHalf);
  auto next = s->Step(x * 0.5, 0, x);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->scalar_type(), at::kHalf);
  EXPECT_TRUE(at::isfinite(*next).all().item<bool>());
}

TEST(Samplers, KnownTimesteps) {
  auto ddim = Make("ddim");  // SD 1.x: leading spacing, steps_offset 1
  ASSERT_TRUE(ddim->SetTimesteps(50).ok());
  EXPECT_EQ(ddim->timesteps().scalar_type(), at::kLong);
  EXPECT_EQ(ddim->timestep(0), 981);
  EXPECT_EQ(ddim->timestep(49), 1);

  auto dpm = Make("dpmpp_2m");  // linspace by default
  ASSERT_TRUE(dpm->SetTimesteps(20).ok());
  EXPECT_EQ(dpm->timestep(0), 999);
  EXPECT_EQ(dpm->timestep(10), 500);
  EXPECT_EQ(dpm->timestep(19), 50);

  auto euler = Make("euler");
  ASSERT_TRUE(euler->SetTimesteps(50).ok());
  EXPECT_EQ(euler->timesteps().scalar_type(), at::kFloat);
  EXPECT_EQ(euler->timestep(0), 999.0);
  EXPECT_FLOAT_EQ(static_cast<float>(euler->timestep(1)), 978.6122f);
  EXPECT_NEAR(euler->init_noise_sigma(), 14.6146, 1e-4);  // linspace: the largest sigma

  auto sdxl = Make("euler", *DefaultSchedulerConfig("sdxl"));  // leading: sqrt(sigma^2 + 1)
  ASSERT_TRUE(sdxl->SetTimesteps(30).ok());
  EXPECT_EQ(sdxl->timestep(0), 958.0);
  EXPECT_NEAR(sdxl->init_noise_sigma(), 11.5203, 1e-4);
  const auto& sigmas = static_cast<EulerSampler&>(*sdxl).sigmas();
  ASSERT_EQ(sigmas.size(), 31u);
  EXPECT_EQ(sigmas.back(), 0.0f);
}

TEST(Samplers, DdimRejectsTimestepsPastTheSchedule) {
  auto s = Make("ddim");
  Status st = s->SetTimesteps(1000);  // leading + steps_offset 1 reaches t = 1000
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("steps_offset 1 with 1000 steps gives timestep 1000 outside 0..999"), std::string::npos)
      << st.message();
  EXPECT_TRUE(s->SetTimesteps(999).ok());
}

TEST(Samplers, DpmSolverNeedsStepsInOrder) {
  auto s = Make("dpmpp_2m");
  ASSERT_TRUE(s->SetTimesteps(5).ok());
  const at::Tensor x = at::randn({1, 4, 2, 2});
  ASSERT_TRUE(s->Step(x, 0, x).ok());
  auto skipped = s->Step(x, 2, x);
  ASSERT_FALSE(skipped.ok());
  EXPECT_EQ(skipped.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(s->Step(x, 1, x).ok());
  EXPECT_TRUE(s->Step(x, 0, x).ok());  // a new trajectory
}

TEST(Samplers, FactoryErrors) {
  auto bad = MakeSampler("heun", Sd1());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "unknown sampler 'heun' (expected ddim, euler or dpmpp_2m)");
  SchedulerConfig c = Sd1();
  c.num_train_timesteps = 0;
  auto invalid = MakeSampler("ddim", c);
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.status().message(),
            "<default sd1 scheduler>: num_train_timesteps: expected 2..100000, found 0");
  EXPECT_TRUE(MakeSampler("dpm++_2m", Sd1()).ok());
  EXPECT_EQ(SamplerNames().size(), 3u);
}

TEST(Samplers, FinalDpmStepReturnsTheDataPrediction) {
  // final_sigmas_type zero: the last step is first order to sigma 0, i.e. x0 itself.
  auto s = Make("dpmpp_2m");
  ASSERT_TRUE(s->SetTimesteps(3).ok());
  const auto& sigmas = static_cast<DpmSolverSampler&>(*s).sigmas();
  ASSERT_EQ(sigmas.size(), 4u);
  EXPECT_EQ(sigmas.back(), 0.0f);
  const at::Tensor x = at::randn({1, 4, 2, 2});
  const at::Tensor eps = at::randn({1, 4, 2, 2});
  ASSERT_TRUE(s->Step(eps, 0, x).ok());
  ASSERT_TRUE(s->Step(eps, 1, x).ok());
  auto last = s->Step(eps, 2, x);
  ASSERT_TRUE(last.ok());
  const double sigma = sigmas[2];
  const double alpha = 1.0 / std::sqrt(sigma * sigma + 1.0);
  at::Tensor x0 = (x - eps * (sigma * alpha)) / alpha;
  EXPECT_TRUE(at::allclose(*last, x0, 1e-5, 1e-5));
}

}  // namespace
}  // namespace distri::samplers
