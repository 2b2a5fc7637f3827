// Tensor parallelism (actors/parallel/tensor_parallel.h) vs the single-device UNet: N = 2 and 4
// ranks as threads over the local channel backend, CPU fp32, tiny SDXL- and SD1.5-shaped UNets
// with separate and fused q/k/v projections; resnets left whole where the gang does not divide
// their groups; a gang that does not divide the heads is refused on every rank; detaching
// restores the plain forward bit for bit.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "actors/model/blocks/attention.h"
#include "actors/model/json_config.h"
#include "actors/model/unet/unet_2d_condition.h"
#include "actors/parallel/tensor_parallel.h"
#include "runtime/channel/factory.h"
#include "runtime/channel/rendezvous.h"
#include "tests/actors/unet/model_test_util.h"

namespace distri::parallel {
namespace {

using model::UNet2DConditionModel;
using model::testing::RelativeError;

// SDXL-shaped (text_time, linear projections, 4 heads wherever there is attention), three
// levels; norm groups 4 (split by 2 and 4) or, with `groups`, another count.
std::string TinyXl(int groups = 4) {
  return R"({
  "_class_name": "UNet2DConditionModel", "block_out_channels": [8, 16, 16],
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "layers_per_block": 1,
  "transformer_layers_per_block": [1, 1, 2], "attention_head_dim": [2, 4, 4], "cross_attention_dim": 12,
  "norm_num_groups": )" + std::to_string(groups) + R"(, "use_linear_projection": true,
  "addition_embed_type": "text_time", "addition_time_embed_dim": 4, "projection_class_embeddings_input_dim": 32})";
}

// SD1.5-shaped: 2 heads, 1x1 conv projections, attention at the first level.
constexpr const char* kTinySd15 = R"({
  "_class_name": "UNet2DConditionModel", "block_out_channels": [8, 16],
  "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1,
  "attention_head_dim": 2, "cross_attention_dim": 12, "norm_num_groups": 4})";

UNet2DConditionModel RandomUNet(const std::string& config, bool fused) {
  auto json = model::JsonConfig::Parse(config, "unet/config.json");
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  auto options = model::UNet2DConditionOptions::FromConfig(*json);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  UNet2DConditionModel unet(*options);
  model::testing::Randomize(*unet, 7);
  if (fused) model::FuseAttentionProjections(*unet);  // as LoadUNet does
  return unet;
}

struct Inputs {
  at::Tensor sample, timestep, states;
  std::optional<model::UNetAddedConditions> added;
};

Inputs MakeInputs(bool text_time, int64_t batch, int64_t height, int64_t width) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  Inputs in;
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

struct RankResult {
  Result<at::Tensor> out = Status::Internal("rank did not run");
  int64_t split_blocks = 0, replicated_blocks = 0;
};

// Runs `world` ranks as threads, each with its own copy of the same UNet; two forwards per
// rank (the second checks that nothing of the first is left over).
std::vector<RankResult> RunGang(const std::string& config, bool fused, const Inputs& in, int world) {
  channel::MemoryRendezvous rendezvous;
  std::vector<RankResult> results(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      c10::InferenceMode guard;
      channel::ChannelOptions options;
      options.op_timeout = std::chrono::milliseconds(60'000);
      auto ch = channel::MakeChannel(channel::Backend::kLocal, r, world, rendezvous, options);
      if (!ch.ok()) {
        results[r].out = ch.status();
        return;
      }
      UNet2DConditionModel unet = RandomUNet(config, fused);
      auto runner = TensorParallelUNetRunner::Create(unet, ch->get(), /*cuda_graphs=*/false);
      if (!runner.ok()) {
        results[r].out = runner.status();
        return;
      }
      results[r].split_blocks = (*runner)->context()->split_blocks();
      results[r].replicated_blocks = (*runner)->context()->replicated_blocks();
      Status s = (*runner)->SetConditioning(in.states, in.added);
      if (!s.ok()) {
        results[r].out = s;
        return;
      }
      auto first = (*runner)->Forward(in.sample, in.timestep);
      if (!first.ok()) {
        results[r].out = first.status();
        return;
      }
      auto second = (*runner)->Forward(in.sample, in.timestep);
      if (second.ok() && !at::equal(*first, *second)) {
        results[r].out = Status::Internal("the second forward differs from the first");
        return;
      }
      results[r].out = std::move(second);
    });
  }
  for (auto& t : threads) t.join();
  return results;
}

struct Case {
  const char* name;
  std::string config;
  bool text_time;
  bool fused;
  int world;
  bool expect_replicated;  // some resnets left whole (groups not divisible)
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class TensorParallelUNet : public ::testing::TestWithParam<Case> {};

TEST_P(TensorParallelUNet, MatchesSingleDevice) {
  const Case& c = GetParam();
  const Inputs in = MakeInputs(c.text_time, /*batch=*/2, 16, 12);
  at::Tensor expected;
  {
    c10::InferenceMode guard;
    expected = RandomUNet(c.config, c.fused)->forward(in.sample, in.timestep, in.states, in.added);
  }
  auto results = RunGang(c.config, c.fused, in, c.world);
  for (int r = 0; r < c.world; ++r) {
    ASSERT_TRUE(results[r].out.ok()) << "rank " << r << ": " << results[r].out.status().ToString();
    ASSERT_EQ(results[r].out->sizes(), expected.sizes());
    EXPECT_GT(results[r].split_blocks, 0);
    EXPECT_EQ(results[r].replicated_blocks > 0, c.expect_replicated) << results[r].replicated_blocks;
    const double err = RelativeError(*results[r].out, expected);
    EXPECT_LT(err, 1e-5) << c.name << " rank " << r;
    if (r == 0) {
      std::printf("[ metric ] tensor %s: N=%d, %lld split / %lld whole blocks, relative error %.3g\n", c.name, c.world,
                  static_cast<long long>(results[r].split_blocks),
                  static_cast<long long>(results[r].replicated_blocks), err);
    }
    if (r > 0) {
      EXPECT_TRUE(at::equal(*results[r].out, *results[0].out)) << "rank " << r << " differs from rank 0";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Gangs, TensorParallelUNet,
    ::testing::Values(Case{"xl_n2", TinyXl(), true, false, 2, false}, Case{"xl_n4", TinyXl(), true, false, 4, false},
                      Case{"xl_fused_n2", TinyXl(), true, true, 2, false},
                      Case{"xl_fused_n4", TinyXl(), true, true, 4, false},
                      // groups 2: the resnets run whole on 4 ranks, attention/ff still split
                      Case{"xl_groups2_n4", TinyXl(2), true, true, 4, true},
                      Case{"sd15_fused_n2", kTinySd15, false, true, 2, false}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(TensorParallelUNetErrors, GangNotDividingTheHeadsIsAClearError) {
  // 3 ranks, 4 heads: every rank refuses while planning, before any collective (no hang).
  const Inputs in = MakeInputs(true, 1, 16, 12);
  auto results = RunGang(TinyXl(), true, in, 3);
  for (int r = 0; r < 3; ++r) {
    ASSERT_FALSE(results[r].out.ok()) << "rank " << r;
    EXPECT_EQ(results[r].out.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(results[r].out.status().message().find(
                  "down_blocks.1.attentions.0.transformer_blocks.0.attn1 has 4 attention heads, which a gang of 3"),
              std::string::npos)
        << results[r].out.status().ToString();
  }
}

TEST(TensorParallelUNetErrors, DetachingRestoresThePlainForward) {
  const Inputs in = MakeInputs(true, 1, 16, 12);
  c10::InferenceMode guard;
  const at::Tensor plain = RandomUNet(TinyXl(), true)->forward(in.sample, in.timestep, in.states, in.added);
  channel::MemoryRendezvous rendezvous;
  std::vector<at::Tensor> after(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      c10::InferenceMode inner;
      auto ch = channel::MakeChannel(channel::Backend::kLocal, r, 2, rendezvous);
      if (!ch.ok()) return;
      UNet2DConditionModel unet = RandomUNet(TinyXl(), true);
      {
        auto runner = TensorParallelUNetRunner::Create(unet, ch->get(), false);
        if (!runner.ok() || !(*runner)->SetConditioning(in.states, in.added).ok()) return;
        if (!(*runner)->Forward(in.sample, in.timestep).ok()) return;
      }
      for (const auto& m : unet->modules()) {
        if (auto* block = dynamic_cast<model::TensorParallelBlock*>(m.get())) {
          EXPECT_EQ(block->tensor_parallel(), nullptr) << block->tensor_parallel_site().name;
        }
      }
      after[r] = unet->forward(in.sample, in.timestep, in.states, in.added);
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) {
    ASSERT_TRUE(after[r].defined()) << "rank " << r;
    EXPECT_TRUE(at::equal(after[r], plain)) << "rank " << r;
  }
}

}  // namespace
}  // namespace distri::parallel
