// Parity of the samplers with diffusers 0.42.1: replays the trajectories that
// tests/parity/ref_samplers.py recorded (same configs, same noise, same fake model output) and
// requires identical timesteps and init_noise_sigma, and samples within 1e-4 relative.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "actors/model/json_config.h"
#include "actors/model/safetensors.h"
#include "actors/samplers/sampler.h"

#ifndef DISTRI_PARITY_DIR
#error "DISTRI_PARITY_DIR must be defined by distri_require_parity_fixture"
#endif

namespace distri::samplers {
namespace {

constexpr double kRelTol = 1e-4;

class SamplerParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto index = model::JsonConfig::Load(std::string(DISTRI_PARITY_DIR) + "/reference.json");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = new model::JsonConfig(std::move(index).value());
    auto file = model::SafetensorsFile::Open(std::string(DISTRI_PARITY_DIR) + "/reference.safetensors");
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    file_ = new std::shared_ptr<model::SafetensorsFile>(std::move(file).value());
  }
  static void TearDownTestSuite() {
    delete index_;
    delete file_;
  }

  static at::Tensor Tensor(const std::string& name) {
    auto t = (*file_)->Get(name);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? t->clone() : at::Tensor();
  }

  static std::unique_ptr<Sampler> Make(const std::string& config, const std::string& sampler) {
    auto cfg = LoadSchedulerConfig(std::string(DISTRI_PARITY_DIR) + "/configs/" + config + "/scheduler_config.json");
    EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
    if (!cfg.ok()) return nullptr;
    auto s = MakeSampler(sampler, *cfg);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Replays every recorded trajectory of `sampler`; returns the worst relative error.
  static void ReplayAll(const std::string& sampler) {
    auto cases = index_->GetStringList("cases");
    ASSERT_TRUE(cases.ok());
    const at::Tensor noise = Tensor("noise");
    const at::Tensor fixed = Tensor("fixed");
    double worst = 0;
    std::string worst_case;
    int replayed = 0;
    for (const std::string& name : *cases) {
      auto c = index_->GetObject(name);
      ASSERT_TRUE(c.ok());
      if (*c->GetString("sampler") != sampler) continue;
      SCOPED_TRACE(name);
      std::unique_ptr<Sampler> s = Make(*c->GetString("config"), sampler);
      ASSERT_NE(s, nullptr);
      const int steps = static_cast<int>(*c->GetInt("steps"));
      ASSERT_TRUE(s->SetTimesteps(steps).ok());

      const at::Tensor ref_t = Tensor(name + "/timesteps");
      ExpectSameTimesteps(*s, ref_t);
      // init_noise_sigma is a float32 value in diffusers; ours must be the same float.
      EXPECT_EQ(static_cast<float>(s->init_noise_sigma()), static_cast<float>(*c->GetDouble("init_noise_sigma")));

      const at::Tensor traj = Tensor(name + "/traj");
      at::Tensor x = noise * s->init_noise_sigma();
      double case_worst = 0;
      for (int i = 0; i < s->num_steps(); ++i) {
        at::Tensor m = s->ScaleModelInput(x, i) * 0.1 + fixed * (1.0 / (1.0 + 0.1 * i));
        auto next = s->Step(m, i, x);
        ASSERT_TRUE(next.ok()) << next.status().ToString();
        x = *next;
        const at::Tensor ref = traj[i + 1];
        const double scale = std::max(ref.abs().max().item<double>(), 1e-6);
        const double err = (x - ref).abs().max().item<double>() / scale;
        case_worst = std::max(case_worst, err);
        ASSERT_LE(err, kRelTol) << "step " << i << " of " << steps;
      }
      if (case_worst > worst) {
        worst = case_worst;
        worst_case = name;
      }
      ++replayed;
    }
    EXPECT_GT(replayed, 0);
    std::printf("[ parity ] %s: %d trajectories, max relative error %.3g (%s)\n", sampler.c_str(), replayed, worst,
                worst_case.c_str());
  }

  // Timesteps must be equal, dtype included. One exception: Euler with Karras sigmas maps
  // sigmas back to fractional float32 timesteps through numpy's SIMD float32 np.log, which is
  // not correctly rounded (it differs from libm and ATen in ~20% of inputs by an ulp), so
  // those may differ in the last bits (an effect of ~1e-7 on the UNet's time embedding).
  static void ExpectSameTimesteps(const Sampler& s, const at::Tensor& ref) {
    ASSERT_EQ(s.timesteps().scalar_type(), ref.scalar_type());
    ASSERT_EQ(s.timesteps().sizes(), ref.sizes()) << "ours " << s.timesteps() << "\n  diffusers " << ref;
    if (s.name() == "euler" && s.config().use_karras_sigmas) {
      const double err = (s.timesteps() - ref).abs().max().item<double>();
      max_karras_timestep_error_ = std::max(max_karras_timestep_error_, err);
      EXPECT_LE(err, 1e-3) << "ours " << s.timesteps() << "\n  diffusers " << ref;
    } else {
      EXPECT_TRUE(at::equal(s.timesteps(), ref)) << "ours " << s.timesteps() << "\n  diffusers " << ref;
    }
  }

  static double max_karras_timestep_error_;
  static model::JsonConfig* index_;
  static std::shared_ptr<model::SafetensorsFile>* file_;
};

double SamplerParity::max_karras_timestep_error_ = 0;
model::JsonConfig* SamplerParity::index_ = nullptr;
std::shared_ptr<model::SafetensorsFile>* SamplerParity::file_ = nullptr;

TEST_F(SamplerParity, DdimTrajectories) { ReplayAll("ddim"); }
TEST_F(SamplerParity, EulerTrajectories) { ReplayAll("euler"); }
TEST_F(SamplerParity, DpmSolverTrajectories) { ReplayAll("dpmpp_2m"); }

// Timesteps for many step counts (1..100 and a few up to num_train_timesteps) equal diffusers'
// exactly, dtype included; DDIM rejects the counts whose timesteps would index past the
// training schedule (diffusers fails there at the first step).
TEST_F(SamplerParity, TimestepSweep) {
  auto sweeps = index_->GetStringList("sweeps");
  ASSERT_TRUE(sweeps.ok());
  int checked = 0;
  for (const std::string& key : *sweeps) {
    SCOPED_TRACE(key);
    auto c = index_->GetObject(key);
    ASSERT_TRUE(c.ok());
    std::unique_ptr<Sampler> s = Make(*c->GetString("config"), *c->GetString("sampler"));
    ASSERT_NE(s, nullptr);
    const at::Tensor all = Tensor(key);
    auto counts = c->GetIntList("steps");
    auto rejected = c->GetIntList("rejected");
    ASSERT_TRUE(counts.ok() && rejected.ok());
    int64_t offset = 0;
    for (int64_t steps : *counts) {
      ASSERT_TRUE(s->SetTimesteps(static_cast<int>(steps)).ok()) << steps << " steps";
      const int64_t n = s->timesteps().numel();
      ASSERT_LE(offset + n, all.numel());
      SCOPED_TRACE(std::to_string(steps) + " steps");
      ExpectSameTimesteps(*s, all.slice(0, offset, offset + n));
      offset += n;
      ++checked;
    }
    EXPECT_EQ(offset, all.numel()) << "diffusers produced a different number of timesteps";
    for (int64_t steps : *rejected) {
      EXPECT_FALSE(s->SetTimesteps(static_cast<int>(steps)).ok()) << steps << " steps";
    }
  }
  std::printf("[ parity ] %d timestep schedules equal (euler+karras: max difference %.3g)\n", checked,
              max_karras_timestep_error_);
}

}  // namespace
}  // namespace distri::samplers
