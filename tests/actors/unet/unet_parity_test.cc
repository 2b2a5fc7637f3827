// Parity with diffusers 0.42.1: the fixture (tests/parity/ref_unet.py) saves three tiny random
// UNets (SD 1.5-, SD 2- and SDXL-shaped) and their outputs; we load them with LoadUNet and
// compare in fp32 on the CPU. Bound: max |ours - diffusers| / max |diffusers| <= 1e-4.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <memory>
#include <ostream>
#include <string>

#include "actors/model/safetensors.h"
#include "actors/model/unet/unet_2d_condition.h"
#include "tests/actors/unet/model_test_util.h"

namespace distri::model {
namespace {

constexpr double kTolerance = 1e-4;
const std::string kFixture = DISTRI_PARITY_DIR;

std::shared_ptr<SafetensorsFile> Reference() { return testing::ParityReferenceFile(kFixture); }
at::Tensor Ref(const std::string& name) { return testing::ParityReference(kFixture, name); }

struct Case {
  const char* model;
  const char* name;
  bool scalar_timestep;
  bool text_time;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << "/" << c.name; }

class UNetParity : public ::testing::TestWithParam<Case> {};

TEST_P(UNetParity, MatchesDiffusers) {
  const Case& c = GetParam();
  ASSERT_NE(Reference(), nullptr);
  auto unet = LoadUNet(kFixture + "/" + c.model + "/unet", "", at::kFloat, at::kCPU);
  ASSERT_TRUE(unet.ok()) << unet.status().ToString();

  const std::string prefix = std::string(c.model) + "." + c.name + ".";
  at::Tensor timestep = Ref(prefix + "timestep");
  if (c.scalar_timestep) timestep = timestep.reshape({});  // the 0-d form
  std::optional<UNetAddedConditions> added;
  if (c.text_time) added = UNetAddedConditions{Ref(prefix + "text_embeds"), Ref(prefix + "time_ids")};

  c10::InferenceMode guard;
  at::Tensor out = (*unet)->forward(Ref(prefix + "sample"), timestep, Ref(prefix + "encoder_hidden_states"), added);
  at::Tensor expected = Ref(prefix + "out");
  ASSERT_EQ(out.sizes(), expected.sizes());
  const double error = testing::RelativeError(out, expected);
  std::printf("[parity] unet %s/%s: relative error %.3g\n", c.model, c.name, error);
  EXPECT_LE(error, kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Tiny, UNetParity,
                         ::testing::Values(Case{"sd15_tiny", "square", false, false},
                                           Case{"sd15_tiny", "odd", true, false},
                                           Case{"sd2_tiny", "square", false, false},
                                           Case{"sd2_tiny", "odd", true, false},
                                           Case{"sdxl_tiny", "square", false, true},
                                           Case{"sdxl_tiny", "odd", true, true}),
                         [](const auto& info) { return std::string(info.param.model) + "_" + info.param.name; });

}  // namespace
}  // namespace distri::model
