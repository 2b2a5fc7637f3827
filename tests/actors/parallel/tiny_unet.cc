#include "tests/actors/parallel/tiny_unet.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "actors/model/blocks/attention.h"
#include "actors/model/json_config.h"
#include "tests/actors/unet/model_test_util.h"

namespace distri::parallel::testing {

std::string TinyXlConfig(int groups) {
  return R"({
  "_class_name": "UNet2DConditionModel", "block_out_channels": [8, 16, 16],
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "layers_per_block": 1,
  "transformer_layers_per_block": [1, 1, 2], "attention_head_dim": [2, 4, 4], "cross_attention_dim": 12,
  "norm_num_groups": )" + std::to_string(groups) + R"(, "use_linear_projection": true,
  "addition_embed_type": "text_time", "addition_time_embed_dim": 4, "projection_class_embeddings_input_dim": 32})";
}

std::string TinySd15Config() {
  return R"({
  "_class_name": "UNet2DConditionModel", "block_out_channels": [8, 16],
  "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1,
  "attention_head_dim": 2, "cross_attention_dim": 12, "norm_num_groups": 4})";
}

model::UNet2DConditionModel RandomUNet(const std::string& config, bool fused) {
  auto json = model::JsonConfig::Parse(config, "unet/config.json");
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  auto options = model::UNet2DConditionOptions::FromConfig(*json);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  model::UNet2DConditionModel unet(*options);
  model::testing::Randomize(*unet, 7);
  if (fused) model::FuseAttentionProjections(*unet);
  return unet;
}

UNetInputs MakeInputs(bool text_time, int64_t batch, int64_t height, int64_t width) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  UNetInputs in;
  in.sample = at::randn({batch, 4, height, width}, gen);
  in.timestep = at::full({batch}, 321.0);
  in.states = at::randn({batch, 5, 12}, gen);
  if (text_time) {
    model::UNetAddedConditions added;
    added.text_embeds = at::randn({batch, 8}, gen);
    added.time_ids = at::tensor({64.0, 64.0, 0.0, 0.0, 64.0, 64.0}).repeat({batch, 1});
    in.added = added;
  }
  return in;
}

void OnRankThreads(int world, const std::function<void(int r)>& rank) {
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) threads.emplace_back(rank, r);
  for (auto& t : threads) t.join();
}

Result<std::unique_ptr<channel::Channel>> LocalRank(int rank, int world, channel::MemoryRendezvous& rendezvous) {
  channel::ChannelOptions options;
  options.op_timeout = std::chrono::milliseconds(60'000);
  return channel::MakeChannel(channel::Backend::kLocal, rank, world, rendezvous, options);
}

}  // namespace distri::parallel::testing
