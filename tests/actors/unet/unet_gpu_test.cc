// The UNet and the VAE on CUDA (label gpu; skipped without a GPU): fp32, bf16 and fp16, NCHW
// and channels_last, against the CPU fp32 result of the same random weights. Head size 64 so
// that SDPA takes its fused kernels, as with the real checkpoints. Prints the errors.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <string>

#include "actors/model/blocks/module_loading.h"
#include "actors/model/json_config.h"
#include "actors/model/safetensors.h"
#include "actors/model/unet/unet_2d_condition.h"
#include "actors/model/vae/autoencoder_kl.h"
#include "tests/actors/unet/model_test_util.h"

namespace distri::model {
namespace {

using testing::RelativeError;
using testing::TempDir;

// SDXL-shaped: 2 and 4 heads of 64 channels, text_time.
constexpr const char* kUNet = R"({
  "block_out_channels": [128, 256], "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
  "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "layers_per_block": 2,
  "transformer_layers_per_block": [1, 2], "attention_head_dim": [2, 4], "cross_attention_dim": 160,
  "use_linear_projection": true, "addition_embed_type": "text_time", "addition_time_embed_dim": 16,
  "projection_class_embeddings_input_dim": 128})";

constexpr const char* kVae = R"({
  "block_out_channels": [64, 128, 128], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D",
  "DownEncoderBlock2D"], "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  "layers_per_block": 1, "norm_num_groups": 32, "force_upcast": true})";

// Writes `module`'s weights as a diffusers folder.
void Save(const TempDir& dir, const char* config, const torch::nn::Module& module) {
  dir.Write("config.json", config);
  ASSERT_TRUE(SaveSafetensors(dir.path() + "/diffusion_pytorch_model.safetensors", testing::StateDict(module)).ok());
}

// Randomize() draws N(0, 0.2); deep random nets blow up with that, so scale by fan-in.
void ScaleByFanIn(torch::nn::Module& module) {
  at::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() >= 2) p.mul_(1.0 / (0.2 * std::sqrt(static_cast<double>(p.numel() / p.size(0)))));
  }
}

TEST(UNetGpu, MatchesCpuInEveryDtypeAndLayout) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  auto config = JsonConfig::Parse(kUNet, "unet/config.json");
  ASSERT_TRUE(config.ok());
  auto options = UNet2DConditionOptions::FromConfig(*config);
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  UNet2DConditionModel cpu(*options);
  testing::Randomize(*cpu, 1);
  ScaleByFanIn(*cpu);
  TempDir dir("unet_gpu");
  Save(dir, kUNet, *cpu);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const at::Tensor sample = at::randn({2, 4, 48, 40}, gen);
  const at::Tensor timestep = at::tensor({801.0, 801.0});
  const at::Tensor states = at::randn({2, 77, 160}, gen);
  const UNetAddedConditions added{at::randn({2, 32}, gen), at::tensor({1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0}).repeat({2, 1})};
  at::Tensor expected;
  {
    c10::InferenceMode guard;
    expected = cpu->forward(sample, timestep, states, added);
  }

  struct Run {
    at::ScalarType dtype;
    bool channels_last;
    double tolerance;
  };
  // fp32 on CUDA: cuDNN convolutions use TF32 by default.
  for (const Run& run : {Run{at::kFloat, false, 1e-2}, Run{at::kBFloat16, false, 5e-2}, Run{at::kHalf, false, 2e-2},
                         Run{at::kHalf, true, 2e-2}}) {
    auto unet = LoadUNet(dir.path(), "", run.dtype, at::kCUDA);
    ASSERT_TRUE(unet.ok()) << unet.status().ToString();
    if (run.channels_last) SetConvWeightFormat(**unet, at::MemoryFormat::ChannelsLast);
    c10::InferenceMode guard;
    auto to_gpu = [&](const at::Tensor& t) {
      at::Tensor g = t.to(at::kCUDA, run.dtype);
      return (run.channels_last && g.dim() == 4) ? g.contiguous(at::MemoryFormat::ChannelsLast) : g;
    };
    at::Tensor out = (*unet)->forward(to_gpu(sample), timestep.to(at::kCUDA), to_gpu(states),
                                      UNetAddedConditions{to_gpu(added.text_embeds), added.time_ids.to(at::kCUDA)});
    EXPECT_EQ(out.scalar_type(), run.dtype);
    const double error = RelativeError(out, expected);
    std::printf("[gpu] unet %s%s: relative error vs CPU fp32 %.3g\n", c10::toString(run.dtype),
                run.channels_last ? " channels_last" : "", error);
    EXPECT_LE(error, run.tolerance);
  }
}

TEST(VaeGpu, Fp16DecodeUpcastsAndMatchesCpu) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  auto config = JsonConfig::Parse(kVae, "vae/config.json");
  ASSERT_TRUE(config.ok());
  auto options = AutoencoderKLOptions::FromConfig(*config);
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  AutoencoderKL cpu(*options);
  testing::Randomize(*cpu, 3);
  ScaleByFanIn(*cpu);
  TempDir dir("vae_gpu");
  Save(dir, kVae, *cpu);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const at::Tensor latents = at::randn({1, 4, 24, 20}, gen);
  const at::Tensor images = at::rand({1, 3, 96, 80}, gen) * 2 - 1;
  at::Tensor expected_images, expected_mean;
  {
    c10::InferenceMode guard;
    expected_images = cpu->Decode(latents);
    expected_mean = cpu->Encode(images).mean;
  }
  auto vae = LoadVae(dir.path(), "", at::kHalf, at::kCUDA);
  ASSERT_TRUE(vae.ok()) << vae.status().ToString();
  c10::InferenceMode guard;
  at::Tensor decoded = (*vae)->Decode(latents.to(at::kCUDA, at::kHalf));
  EXPECT_EQ(decoded.scalar_type(), at::kFloat);  // force_upcast
  const double decode_error = RelativeError(decoded, expected_images);
  at::Tensor decoded_bf16 = (*vae)->Decode(latents.to(at::kCUDA), at::kBFloat16);
  const double bf16_error = RelativeError(decoded_bf16, expected_images);
  const double encode_error = RelativeError((*vae)->Encode(images.to(at::kCUDA, at::kHalf)).mean, expected_mean);
  std::printf("[gpu] vae fp16 weights: decode (fp32 compute) %.3g, decode (bf16 compute) %.3g, encode (fp16) %.3g\n",
              decode_error, bf16_error, encode_error);
  EXPECT_LE(decode_error, 1e-2);
  EXPECT_LE(bf16_error, 5e-2);
  EXPECT_LE(encode_error, 2e-2);
}

}  // namespace
}  // namespace distri::model
