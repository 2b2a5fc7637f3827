// UNet2DConditionModel without diffusers: state-dict names, loader errors that name the tensor,
// the LayerContext seam, odd latent sizes and memory-format independence.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>

#include <map>
#include <set>
#include <string>

#include "actors/model/blocks/layer_context.h"
#include "actors/model/blocks/module_loading.h"
#include "actors/model/json_config.h"
#include "actors/model/safetensors.h"
#include "actors/model/unet/unet_2d_condition.h"
#include "tests/actors/unet/model_test_util.h"

namespace distri::model {
namespace {

using testing::RelativeError;
using testing::TempDir;

// SDXL-shaped, tiny: text_time, a DownBlock2D first, transformer_layers_per_block [1, 2].
constexpr const char* kTinyXl = R"({
  "_class_name": "UNet2DConditionModel", "block_out_channels": [8, 16],
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
  "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "layers_per_block": 1,
  "transformer_layers_per_block": [1, 2], "attention_head_dim": [2, 4], "cross_attention_dim": 12,
  "norm_num_groups": 4, "use_linear_projection": true, "addition_embed_type": "text_time",
  "addition_time_embed_dim": 4, "projection_class_embeddings_input_dim": 32})";

UNet2DConditionOptions TinyOptions() {
  auto config = JsonConfig::Parse(kTinyXl, "unet/config.json");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  auto options = UNet2DConditionOptions::FromConfig(*config);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  return *options;
}

UNet2DConditionModel RandomTinyUNet() {
  UNet2DConditionModel unet(TinyOptions());
  testing::Randomize(*unet, 7);
  return unet;
}

struct Inputs {
  at::Tensor sample, timestep, states;
  UNetAddedConditions added;
};

Inputs MakeInputs(int64_t batch, int64_t height, int64_t width) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  Inputs in;
  in.sample = at::randn({batch, 4, height, width}, gen);
  in.timestep = at::full({batch}, 321.0);
  in.states = at::randn({batch, 5, 12}, gen);
  in.added.text_embeds = at::randn({batch, 8}, gen);
  in.added.time_ids = at::tensor({64.0, 64.0, 0.0, 0.0, 64.0, 64.0}).repeat({batch, 1});
  return in;
}

TEST(UNetModel, StateDictNamesAreDiffusers) {
  UNet2DConditionModel unet(TinyOptions());
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : unet->named_parameters()) shapes[p.key()] = p.value().sizes().vec();
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"conv_in.weight", {8, 4, 3, 3}},
      {"time_embedding.linear_1.weight", {32, 8}},
      {"time_embedding.linear_2.bias", {32}},
      {"add_embedding.linear_1.weight", {32, 32}},
      {"down_blocks.0.resnets.0.norm1.weight", {8}},
      {"down_blocks.0.resnets.0.time_emb_proj.weight", {8, 32}},
      {"down_blocks.0.downsamplers.0.conv.weight", {8, 8, 3, 3}},
      {"down_blocks.1.resnets.0.conv_shortcut.weight", {16, 8, 1, 1}},
      {"down_blocks.1.attentions.0.norm.weight", {16}},
      {"down_blocks.1.attentions.0.proj_in.weight", {16, 16}},  // linear projection
      {"down_blocks.1.attentions.0.transformer_blocks.1.attn1.to_q.weight", {16, 16}},
      {"down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight", {16, 12}},
      {"down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0.bias", {16}},
      {"down_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj.weight", {128, 16}},
      {"down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.weight", {16, 64}},
      {"down_blocks.1.attentions.0.transformer_blocks.0.norm3.bias", {16}},
      {"mid_block.resnets.1.conv2.weight", {16, 16, 3, 3}},
      {"mid_block.attentions.0.transformer_blocks.1.attn1.to_v.weight", {16, 16}},
      {"up_blocks.0.resnets.0.conv1.weight", {16, 32, 3, 3}},
      {"up_blocks.0.resnets.1.conv1.weight", {16, 24, 3, 3}},
      {"up_blocks.0.attentions.1.proj_out.weight", {16, 16}},
      {"up_blocks.0.upsamplers.0.conv.weight", {16, 16, 3, 3}},
      {"up_blocks.1.resnets.0.conv1.weight", {8, 24, 3, 3}},
      {"conv_norm_out.weight", {8}},
      {"conv_out.weight", {4, 8, 3, 3}},
  };
  for (const auto& [name, shape] : expected) {
    auto it = shapes.find(name);
    ASSERT_NE(it, shapes.end()) << name;
    EXPECT_EQ(it->second, shape) << name;
  }
  // No bias on q/k/v (attention_bias false), none on the dropout slots.
  EXPECT_EQ(shapes.count("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.bias"), 0u);
  EXPECT_EQ(shapes.count("up_blocks.1.attentions.0.norm.weight"), 0u);  // UpBlock2D: no attention
}

// Saves a random tiny UNet as a diffusers folder, with `edit` applied to its weights first.
template <typename Edit>
std::string SaveTiny(const TempDir& dir, Edit edit) {
  UNet2DConditionModel unet = RandomTinyUNet();
  TensorMap weights = testing::StateDict(*unet);
  edit(weights);
  dir.Write("config.json", kTinyXl);
  EXPECT_TRUE(SaveSafetensors(dir.path() + "/diffusion_pytorch_model.safetensors", weights).ok());
  return dir.path();
}

TEST(UNetModel, LoadsWhatItSaved) {
  TempDir dir("unet_load_ok");
  SaveTiny(dir, [](TensorMap&) {});
  auto unet = LoadUNet(dir.path(), "", at::kFloat, at::kCPU);
  ASSERT_TRUE(unet.ok()) << unet.status().ToString();
  UNet2DConditionModel reference = RandomTinyUNet();
  Inputs in = MakeInputs(1, 8, 8);
  c10::InferenceMode guard;
  at::Tensor a = (*unet)->forward(in.sample, in.timestep, in.states, in.added);
  at::Tensor b = reference->forward(in.sample, in.timestep, in.states, in.added);
  EXPECT_EQ(RelativeError(a, b), 0.0);
}

TEST(UNetModel, MissingWeightIsNamed) {
  TempDir dir("unet_load_missing");
  SaveTiny(dir, [](TensorMap& w) { w.erase("down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k.weight"); });
  auto unet = LoadUNet(dir.path(), "", at::kFloat, at::kCPU);
  ASSERT_FALSE(unet.ok());
  EXPECT_NE(unet.status().message().find("down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k.weight"),
            std::string::npos)
      << unet.status().message();
}

TEST(UNetModel, MisshapedWeightIsNamed) {
  TempDir dir("unet_load_shape");
  SaveTiny(dir, [](TensorMap& w) { w["mid_block.resnets.0.conv1.weight"] = at::zeros({16, 16, 1, 1}); });
  auto unet = LoadUNet(dir.path(), "", at::kFloat, at::kCPU);
  ASSERT_FALSE(unet.ok());
  const std::string& m = unet.status().message();
  EXPECT_NE(m.find("mid_block.resnets.0.conv1.weight"), std::string::npos) << m;
  EXPECT_NE(m.find("[16, 16, 3, 3]"), std::string::npos) << m;
}

TEST(UNetModel, UnexpectedWeightIsNamed) {
  TempDir dir("unet_load_extra");
  SaveTiny(dir, [](TensorMap& w) { w["class_embedding.linear_1.weight"] = at::zeros({32, 8}); });
  auto unet = LoadUNet(dir.path(), "", at::kFloat, at::kCPU);
  ASSERT_FALSE(unet.ok());
  EXPECT_NE(unet.status().message().find("class_embedding.linear_1.weight"), std::string::npos)
      << unet.status().message();
}

TEST(UNetModel, UnsupportedConfigKeyFailsTheLoad) {
  TempDir dir("unet_load_config");
  SaveTiny(dir, [](TensorMap&) {});
  std::string config = kTinyXl;
  config.insert(config.rfind('}'), R"(, "class_embed_type": "projection")");
  dir.Write("config.json", config);
  auto unet = LoadUNet(dir.path(), "", at::kFloat, at::kCPU);
  ASSERT_FALSE(unet.ok());
  EXPECT_NE(unet.status().message().find("config.json: class_embed_type:"), std::string::npos)
      << unet.status().message();
}

TEST(UNetModel, OddSizesTimestepFormsAndMemoryFormat) {
  UNet2DConditionModel unet = RandomTinyUNet();
  c10::InferenceMode guard;
  Inputs in = MakeInputs(2, 7, 11);
  at::Tensor out = unet->forward(in.sample, in.timestep, in.states, in.added);
  EXPECT_EQ(out.sizes(), in.sample.sizes());
  EXPECT_TRUE(at::isfinite(out).all().item<bool>());
  // A 0-d timestep and a [1] timestep broadcast to the batch.
  at::Tensor scalar_t = unet->forward(in.sample, at::scalar_tensor(321.0), in.states, in.added);
  at::Tensor single_t = unet->forward(in.sample, at::full({1}, 321), in.states, in.added);
  EXPECT_EQ(RelativeError(scalar_t, out), 0.0);
  EXPECT_EQ(RelativeError(single_t, out), 0.0);
  // channels_last input: same numbers (up to summation order).
  at::Tensor cl = unet->forward(in.sample.contiguous(at::MemoryFormat::ChannelsLast), in.timestep, in.states, in.added);
  EXPECT_LT(RelativeError(cl, out), 1e-5);
  // ... and with channels_last convolution weights too.
  SetConvWeightFormat(*unet, at::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(unet->conv_in->weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  at::Tensor cl_weights =
      unet->forward(in.sample.contiguous(at::MemoryFormat::ChannelsLast), in.timestep, in.states, in.added);
  EXPECT_LT(RelativeError(cl_weights, out), 1e-5);
}

TEST(UNetModel, TextTimeNeedsAddedConditions) {
  UNet2DConditionModel unet = RandomTinyUNet();
  c10::InferenceMode guard;
  Inputs in = MakeInputs(1, 8, 8);
  EXPECT_THROW(unet->forward(in.sample, in.timestep, in.states), c10::Error);
}

// Counts the calls and computes locally: the seam must see every conv, group norm and
// self-attention, and change nothing by itself.
class CountingContext : public LayerContext {
 public:
  at::Tensor Conv2d(const LayerSite& site, const Conv2dImpl& conv, const at::Tensor& x) override {
    seen[site.name]++;
    return LayerContext::Conv2d(site, conv, x);
  }
  at::Tensor GroupNorm(const LayerSite& site, const GroupNormImpl& norm, const at::Tensor& x) override {
    seen[site.name]++;
    return LayerContext::GroupNorm(site, norm, x);
  }
  std::pair<at::Tensor, at::Tensor> SelfAttentionKeyValue(const LayerSite& site, at::Tensor k, at::Tensor v) override {
    seen[site.name]++;
    EXPECT_EQ(k.dim(), 3);
    return LayerContext::SelfAttentionKeyValue(site, std::move(k), std::move(v));
  }
  std::map<std::string, int> seen;
};

TEST(UNetModel, LayerContextSeesEveryHookedLayerOnce) {
  UNet2DConditionModel unet = RandomTinyUNet();
  c10::InferenceMode guard;
  Inputs in = MakeInputs(1, 8, 8);
  at::Tensor plain = unet->forward(in.sample, in.timestep, in.states, in.added);

  auto ctx = std::make_shared<CountingContext>();
  std::vector<LayerSite> sites = AttachLayerContext(*unet, ctx);
  std::map<LayerKind, int> per_kind;
  for (const auto& site : sites) {
    EXPECT_EQ(site.index, per_kind[site.kind]++) << site.name;
  }
  EXPECT_EQ(sites.front().name, "conv_in");
  // Self-attention layers: down_blocks.1 (1 x 2 layers) + mid (2) + up_blocks.0 (2 x 2).
  EXPECT_EQ(per_kind[LayerKind::kSelfAttention], 8);
  at::Tensor hooked = unet->forward(in.sample, in.timestep, in.states, in.added);
  EXPECT_EQ(RelativeError(hooked, plain), 0.0);
  EXPECT_EQ(ctx->seen.size(), sites.size());
  for (const auto& site : sites) EXPECT_EQ(ctx->seen[site.name], 1) << site.name;
  for (const auto& [name, count] : ctx->seen) EXPECT_EQ(name.find("attn2"), std::string::npos) << name;

  AttachLayerContext(*unet, nullptr);
  ctx->seen.clear();
  unet->forward(in.sample, in.timestep, in.states, in.added);
  EXPECT_TRUE(ctx->seen.empty());
}

}  // namespace
}  // namespace distri::model
