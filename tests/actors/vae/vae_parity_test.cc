// Parity with diffusers 0.42.1: the fixture (tests/parity/ref_vae.py) saves two tiny random
// AutoencoderKLs and their encode (posterior mean, logvar) and decode outputs; we load them with
// LoadVae and compare in fp32 on the CPU. Bound: max |ours - diffusers| / max |diffusers| <= 1e-4.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <memory>
#include <ostream>
#include <string>

#include "actors/model/safetensors.h"
#include "actors/model/vae/autoencoder_kl.h"
#include "tests/actors/unet/model_test_util.h"

namespace distri::model {
namespace {

constexpr double kTolerance = 1e-4;
const std::string kFixture = DISTRI_PARITY_DIR;

std::shared_ptr<SafetensorsFile> Reference() { return testing::ParityReferenceFile(kFixture); }
at::Tensor Ref(const std::string& name) { return testing::ParityReference(kFixture, name); }

void ExpectClose(const std::string& what, const at::Tensor& actual, const at::Tensor& expected) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double error = testing::RelativeError(actual, expected);
  std::printf("[parity] vae %s: relative error %.3g\n", what.c_str(), error);
  EXPECT_LE(error, kTolerance) << what;
}

struct Case {
  const char* model;
  const char* name;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.model << "/" << c.name; }

class VaeParity : public ::testing::TestWithParam<Case> {
 protected:
  AutoencoderKL Load() {
    auto vae = LoadVae(kFixture + "/" + GetParam().model + "/vae", "", at::kFloat, at::kCPU);
    EXPECT_TRUE(vae.ok()) << vae.status().ToString();
    return vae.ok() ? *vae : AutoencoderKL(nullptr);
  }
  std::string Prefix(const char* what) const {
    return std::string(GetParam().model) + "." + what + "." + GetParam().name + ".";
  }
};

TEST_P(VaeParity, EncodeMatchesDiffusers) {
  ASSERT_NE(Reference(), nullptr);
  AutoencoderKL vae = Load();
  ASSERT_FALSE(vae.is_empty());
  c10::InferenceMode guard;
  DiagonalGaussian dist = vae->Encode(Ref(Prefix("encode") + "images"));
  ExpectClose(Prefix("encode") + "mean", dist.mean, Ref(Prefix("encode") + "mean"));
  ExpectClose(Prefix("encode") + "logvar", dist.logvar, Ref(Prefix("encode") + "logvar"));
}

TEST_P(VaeParity, DecodeMatchesDiffusers) {
  ASSERT_NE(Reference(), nullptr);
  AutoencoderKL vae = Load();
  ASSERT_FALSE(vae.is_empty());
  c10::InferenceMode guard;
  at::Tensor images = vae->Decode(Ref(Prefix("decode") + "latents"));
  ExpectClose(Prefix("decode") + "images", images, Ref(Prefix("decode") + "images"));
}

INSTANTIATE_TEST_SUITE_P(Tiny, VaeParity,
                         ::testing::Values(Case{"vae_tiny", "square"}, Case{"vae_tiny", "odd"},
                                           Case{"vae_noattn", "square"}, Case{"vae_noattn", "odd"}),
                         [](const auto& info) { return std::string(info.param.model) + "_" + info.param.name; });

}  // namespace
}  // namespace distri::model
