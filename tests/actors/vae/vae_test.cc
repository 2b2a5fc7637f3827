// AutoencoderKL without diffusers: config reading and refusals, state-dict names, loader
// errors, the Decode precision policy, latent scaling and posterior sampling.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <map>
#include <string>

#include "actors/model/json_config.h"
#include "actors/model/safetensors.h"
#include "actors/model/vae/autoencoder_kl.h"
#include "tests/actors/unet/model_test_util.h"

namespace distri::model {
namespace {

using testing::RelativeError;
using testing::TempDir;

constexpr const char* kTiny = R"({
  "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [8, 16],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "layers_per_block": 1,
  "latent_channels": 4, "norm_num_groups": 4, "scaling_factor": 0.13025, "force_upcast": true})";

AutoencoderKLOptions TinyOptions(const std::string& text = kTiny) {
  auto config = JsonConfig::Parse(text, "vae/config.json");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  auto options = AutoencoderKLOptions::FromConfig(*config);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  return *options;
}

AutoencoderKL RandomTinyVae() {
  AutoencoderKL vae(TinyOptions());
  testing::Randomize(*vae, 5);
  return vae;
}

TEST(VaeConfig, ReadsSdxlVae) {
  auto config = JsonConfig::Parse(R"({
    "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
    "force_upcast": true, "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
    "out_channels": 3, "sample_size": 1024, "scaling_factor": 0.13025, "shift_factor": null,
    "latents_mean": null, "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D",
    "UpDecoderBlock2D"]})",
                                  "vae/config.json");
  ASSERT_TRUE(config.ok());
  auto o = AutoencoderKLOptions::FromConfig(*config);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->downscale_factor(), 8);
  EXPECT_DOUBLE_EQ(o->scaling_factor, 0.13025);
  EXPECT_FALSE(o->shift_factor.has_value());
  EXPECT_TRUE(o->force_upcast);
  EXPECT_TRUE(o->mid_block_add_attention);
  EXPECT_TRUE(o->use_quant_conv);
}

TEST(VaeConfig, UnsupportedOptionsAreNamed) {
  const std::map<std::string, std::string> cases = {
      {R"("act_fn": "gelu")", "vae/config.json: act_fn:"},
      {R"("_class_name": "AutoencoderTiny")", "vae/config.json: _class_name:"},
  };
  for (const auto& [extra, prefix] : cases) {
    std::string text = kTiny;
    text = text.substr(0, text.rfind('}')) + ", " + extra + "}";
    auto config = JsonConfig::Parse(text, "vae/config.json");
    ASSERT_TRUE(config.ok());
    auto o = AutoencoderKLOptions::FromConfig(*config);
    ASSERT_FALSE(o.ok()) << extra;
    EXPECT_EQ(o.status().message().rfind(prefix, 0), 0u) << o.status().message();
  }
  auto config = JsonConfig::Parse(R"({"block_out_channels": [8, 16], "down_block_types": ["DownEncoderBlock2D",
    "AttnDownEncoderBlock2D"]})",
                                  "vae/config.json");
  ASSERT_TRUE(config.ok());
  auto o = AutoencoderKLOptions::FromConfig(*config);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().message(),
            "vae/config.json: down_block_types: \"AttnDownEncoderBlock2D\" is not supported (supported: "
            "DownEncoderBlock2D)");
}

TEST(Vae, StateDictNamesAreDiffusers) {
  AutoencoderKL vae(TinyOptions());
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : vae->named_parameters()) shapes[p.key()] = p.value().sizes().vec();
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"encoder.conv_in.weight", {8, 3, 3, 3}},
      {"encoder.down_blocks.0.resnets.0.conv1.weight", {8, 8, 3, 3}},
      {"encoder.down_blocks.0.downsamplers.0.conv.weight", {8, 8, 3, 3}},
      {"encoder.down_blocks.1.resnets.0.conv_shortcut.weight", {16, 8, 1, 1}},
      {"encoder.mid_block.attentions.0.group_norm.weight", {16}},
      {"encoder.mid_block.attentions.0.to_q.bias", {16}},
      {"encoder.mid_block.attentions.0.to_out.0.weight", {16, 16}},
      {"encoder.mid_block.resnets.1.norm2.bias", {16}},
      {"encoder.conv_out.weight", {8, 16, 3, 3}},
      {"quant_conv.weight", {8, 8, 1, 1}},
      {"post_quant_conv.weight", {4, 4, 1, 1}},
      {"decoder.conv_in.weight", {16, 4, 3, 3}},
      {"decoder.mid_block.attentions.0.to_v.weight", {16, 16}},
      {"decoder.up_blocks.0.resnets.1.conv2.weight", {16, 16, 3, 3}},  // layers_per_block + 1
      {"decoder.up_blocks.0.upsamplers.0.conv.weight", {16, 16, 3, 3}},
      {"decoder.up_blocks.1.resnets.0.conv_shortcut.weight", {8, 16, 1, 1}},
      {"decoder.conv_norm_out.weight", {8}},
      {"decoder.conv_out.weight", {3, 8, 3, 3}},
  };
  for (const auto& [name, shape] : expected) {
    auto it = shapes.find(name);
    ASSERT_NE(it, shapes.end()) << name;
    EXPECT_EQ(it->second, shape) << name;
  }
  EXPECT_EQ(shapes.count("decoder.up_blocks.0.resnets.2.conv2.weight"), 0u);
  EXPECT_EQ(shapes.count("decoder.up_blocks.1.upsamplers.0.conv.weight"), 0u);  // last level: none
  EXPECT_EQ(shapes.count("decoder.up_blocks.0.resnets.0.time_emb_proj.weight"), 0u);
}

TEST(Vae, MissingAndMisshapedWeightsAreNamed) {
  AutoencoderKL vae = RandomTinyVae();
  for (const std::string name : {"decoder.mid_block.attentions.0.to_k.weight", "encoder.conv_out.bias"}) {
    for (bool drop : {true, false}) {
      TempDir dir("vae_load");
      TensorMap weights = testing::StateDict(*vae);
      if (drop) {
        weights.erase(name);
      } else {
        weights[name] = at::zeros({1});
      }
      dir.Write("config.json", kTiny);
      ASSERT_TRUE(SaveSafetensors(dir.path() + "/diffusion_pytorch_model.safetensors", weights).ok());
      auto loaded = LoadVae(dir.path(), "", at::kFloat, at::kCPU);
      ASSERT_FALSE(loaded.ok()) << name;
      EXPECT_NE(loaded.status().message().find(name), std::string::npos) << loaded.status().message();
    }
  }
}

TEST(Vae, DecodeDtypePolicy) {
  // force_upcast + fp16 weights -> fp32; an explicit request always wins.
  EXPECT_EQ(ResolveDecodeDtype(at::kHalf, true, std::nullopt), at::kFloat);
  EXPECT_EQ(ResolveDecodeDtype(at::kHalf, false, std::nullopt), at::kHalf);
  EXPECT_EQ(ResolveDecodeDtype(at::kBFloat16, true, std::nullopt), at::kBFloat16);
  EXPECT_EQ(ResolveDecodeDtype(at::kFloat, true, std::nullopt), at::kFloat);
  EXPECT_EQ(ResolveDecodeDtype(at::kHalf, true, at::kBFloat16), at::kBFloat16);
  EXPECT_EQ(ResolveDecodeDtype(at::kFloat, false, at::kBFloat16), at::kBFloat16);
}

TEST(Vae, Fp16WeightsDecodeInFp32AndStayFp16) {
  TempDir dir("vae_fp16");
  AutoencoderKL reference = RandomTinyVae();
  dir.Write("config.json", kTiny);
  ASSERT_TRUE(SaveSafetensors(dir.path() + "/diffusion_pytorch_model.safetensors", testing::StateDict(*reference)).ok());
  auto half = LoadVae(dir.path(), "", at::kHalf, at::kCPU);
  ASSERT_TRUE(half.ok()) << half.status().ToString();
  ASSERT_EQ((*half)->weights_dtype(), at::kHalf);

  c10::InferenceMode guard;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  at::Tensor z = at::randn({1, 4, 5, 6}, gen);
  at::Tensor expected = reference->Decode(z);
  at::Tensor upcast = (*half)->Decode(z.to(at::kHalf));  // force_upcast: runs in fp32
  EXPECT_EQ(upcast.scalar_type(), at::kFloat);
  EXPECT_EQ(upcast.sizes(), (std::vector<int64_t>{1, 3, 10, 12}));
  EXPECT_LT(RelativeError(upcast, expected), 1e-2);  // fp16-rounded weights, fp32 compute
  EXPECT_EQ((*half)->weights_dtype(), at::kHalf);     // the weights were not converted
  // Built once, reused.
  at::Tensor again = (*half)->Decode(z.to(at::kHalf));
  EXPECT_EQ(RelativeError(again, upcast), 0.0);
  (*half)->ReleaseComputeCopies();

  at::Tensor bf16 = reference->Decode(z, at::kBFloat16);
  EXPECT_EQ(bf16.scalar_type(), at::kBFloat16);
  EXPECT_LT(RelativeError(bf16, expected), 5e-2);
}

TEST(Vae, LatentScalingAndSampling) {
  AutoencoderKLOptions options = TinyOptions();
  options.shift_factor = 0.25;
  AutoencoderKL vae(options);
  at::Tensor latents = at::randn({1, 4, 3, 3});
  at::Tensor z = vae->UnscaleLatents(latents);
  EXPECT_TRUE(at::allclose(z, latents / 0.13025 + 0.25));
  EXPECT_TRUE(at::allclose(vae->ScaleLatents(z), latents, 1e-5, 1e-6));

  at::Tensor moments = at::randn({2, 8, 3, 3});
  moments.narrow(1, 4, 1).fill_(100.0);  // logvar clamps at 20
  DiagonalGaussian dist = DiagonalGaussian::FromMoments(moments);
  EXPECT_TRUE(at::equal(dist.mean, moments.narrow(1, 0, 4)));
  EXPECT_EQ(dist.logvar.max().item<double>(), 20.0);
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(9);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(9);
  at::Tensor s1 = dist.Sample(g1), s2 = dist.Sample(g2);
  EXPECT_TRUE(at::equal(s1, s2));
  EXPECT_FALSE(at::equal(s1, dist.mean));
}

}  // namespace
}  // namespace distri::model
