// Synchronous patch parallelism (full_sync) vs the single-device UNet: N = 1..4 ranks as
// threads over the local channel backend, even, uneven and ragged strips, CPU fp32.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <atomic>
#include <ostream>
#include <stdexcept>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/model/blocks/layer_context.h"
#include "actors/model/json_config.h"
#include "actors/model/unet/unet_2d_condition.h"
#include "actors/parallel/patch_parallel_unet.h"
#include "runtime/channel/factory.h"
#include "runtime/channel/rendezvous.h"
#include "tests/actors/unet/model_test_util.h"

namespace distri::parallel {
namespace {

using model::UNet2DConditionModel;
using model::UNet2DConditionOptions;
using model::testing::RelativeError;

// SDXL-shaped (text_time, linear projections) with three levels: two downsamplers, row unit 4.
constexpr const char* kTinyXl = R"({
  "_class_name": "UNet2DConditionModel", "block_out_channels": [8, 16, 16],
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "layers_per_block": 1,
  "transformer_layers_per_block": [1, 1, 2], "attention_head_dim": [2, 4, 4], "cross_attention_dim": 12,
  "norm_num_groups": 4, "use_linear_projection": true, "addition_embed_type": "text_time",
  "addition_time_embed_dim": 4, "projection_class_embeddings_input_dim": 32})";

// SD1.5-shaped: attention at the first level (the largest K/V), 1x1 conv projections.
constexpr const char* kTinySd15 = R"({
  "_class_name": "UNet2DConditionModel", "block_out_channels": [8, 16],
  "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1,
  "attention_head_dim": 2, "cross_attention_dim": 12, "norm_num_groups": 4})";

UNet2DConditionOptions Options(const char* config) {
  auto json = model::JsonConfig::Parse(config, "unet/config.json");
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  auto options = UNet2DConditionOptions::FromConfig(*json);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  return *options;
}

// The same random weights every time it is called: one module per rank.
UNet2DConditionModel RandomUNet(const char* config) {
  UNet2DConditionModel unet(Options(config));
  model::testing::Randomize(*unet, 7);
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

at::Tensor SingleDevice(const char* config, const Inputs& in) {
  c10::InferenceMode guard;
  UNet2DConditionModel unet = RandomUNet(config);
  return unet->forward(in.sample, in.timestep, in.states, in.added);
}

// Runs `world` ranks as threads; returns every rank's result.
std::vector<Result<at::Tensor>> RunGang(const char* config, const Inputs& in, int world) {
  channel::MemoryRendezvous rendezvous;
  std::vector<Result<at::Tensor>> results(world, Status::Internal("rank did not run"));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      c10::InferenceMode guard;
      channel::ChannelOptions options;
      options.op_timeout = std::chrono::milliseconds(60'000);
      auto ch = channel::MakeChannel(channel::Backend::kLocal, r, world, rendezvous, options);
      if (!ch.ok()) {
        results[r] = ch.status();
        return;
      }
      UNet2DConditionModel unet = RandomUNet(config);
      auto plan = PlanForUNet(*unet, in.sample.size(2), in.sample.size(3), world);
      if (!plan.ok()) {
        results[r] = plan.status();
        return;
      }
      results[r] = PatchParallelUNetForward(unet, **ch, *plan, in.sample, in.timestep, in.states, in.added);
    });
  }
  for (auto& t : threads) t.join();
  return results;
}

struct Case {
  const char* name;
  const char* config;
  bool text_time;
  int64_t height, width;
  int world;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class SyncPatchUNet : public ::testing::TestWithParam<Case> {};

TEST_P(SyncPatchUNet, MatchesSingleDevice) {
  const Case& c = GetParam();
  const Inputs in = MakeInputs(c.text_time, /*batch=*/2, c.height, c.width);
  const at::Tensor expected = SingleDevice(c.config, in);
  auto results = RunGang(c.config, in, c.world);
  for (int r = 0; r < c.world; ++r) {
    ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r].status().ToString();
    ASSERT_EQ(results[r]->sizes(), expected.sizes()) << "rank " << r;
    const double err = RelativeError(*results[r], expected);
    EXPECT_LT(err, 1e-4) << c.name << " rank " << r;
    if (r == 0) std::printf("[ metric ] %s: N=%d %lldx%lld relative error %.3g\n", c.name, c.world,
                            static_cast<long long>(c.height), static_cast<long long>(c.width), err);
    // Every rank gathers the same strips in the same order.
    if (r > 0) EXPECT_TRUE(at::equal(*results[r], *results[0])) << "rank " << r << " differs from rank 0";
  }
}

// Row unit 4 for the XL config (two downsamplers), 2 for SD1.5 (one).
INSTANTIATE_TEST_SUITE_P(
    Strips, SyncPatchUNet,
    ::testing::Values(Case{"xl_n1", kTinyXl, true, 16, 12, 1},
                      Case{"xl_even_n2", kTinyXl, true, 16, 12, 2},   // 8 + 8
                      Case{"xl_even_n3", kTinyXl, true, 24, 12, 3},   // 8 + 8 + 8
                      Case{"xl_even_n4", kTinyXl, true, 16, 12, 4},   // 4 x 4
                      Case{"xl_uneven_n2", kTinyXl, true, 20, 12, 2}, // 12 + 8
                      Case{"xl_uneven_n3", kTinyXl, true, 16, 12, 3}, // 8 + 4 + 4
                      Case{"xl_uneven_n4", kTinyXl, true, 24, 10, 4}, // 8 + 8 + 4 + 4, width 10 -> 5 -> 3
                      Case{"xl_ragged_n4", kTinyXl, true, 18, 12, 4}, // 8 + 4 + 4 + 2
                      Case{"sd15_even_n2", kTinySd15, false, 12, 8, 2},
                      Case{"sd15_uneven_n3", kTinySd15, false, 14, 8, 3},  // 6 + 4 + 4
                      Case{"sd15_uneven_n4", kTinySd15, false, 10, 8, 4}), // 4 + 2 + 2 + 2
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(SyncPatchUNetErrors, TooSmallHeightIsAClearError) {
  // 8 latent rows are 2 units of 4: not enough for 4 ranks. Every rank refuses before any
  // collective, so nothing hangs.
  const Inputs in = MakeInputs(true, 1, 8, 8);
  auto results = RunGang(kTinyXl, in, 4);
  for (int r = 0; r < 4; ++r) {
    ASSERT_FALSE(results[r].ok());
    EXPECT_EQ(results[r].status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(results[r].status().message().find("latent height 8 gives 2 row unit(s) of 4 rows"), std::string::npos)
        << results[r].status().ToString();
  }
}

TEST(SyncPatchUNetErrors, SampleNotOfThePlanIsRefused) {
  c10::InferenceMode guard;
  channel::MemoryRendezvous rendezvous;
  auto ch = channel::MakeChannel(channel::Backend::kLocal, 0, 1, rendezvous);
  ASSERT_TRUE(ch.ok());
  UNet2DConditionModel unet = RandomUNet(kTinyXl);
  auto plan = PlanForUNet(*unet, 16, 12, 1);
  ASSERT_TRUE(plan.ok());
  const Inputs in = MakeInputs(true, 1, 20, 12);
  auto out = PatchParallelUNetForward(unet, **ch, *plan, in.sample, in.timestep, in.states, in.added);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("expected a [B, C, 16, 12] latent"), std::string::npos)
      << out.status().ToString();
  auto other = PatchPlan::Make(16, 12, 1, 1);
  ASSERT_TRUE(other.ok());
  out = PatchParallelUNetForward(unet, **ch, *other, in.sample, in.timestep, in.states, in.added);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("1 downsampling(s), the UNet has 2"), std::string::npos)
      << out.status().ToString();
}

TEST(SyncPatchUNetErrors, ContextIsDetachedAfterTheForward) {
  // After a patch-parallel forward, the same module computes the plain forward again.
  const Inputs in = MakeInputs(true, 1, 16, 12);
  c10::InferenceMode guard;
  channel::MemoryRendezvous rendezvous;
  auto ch = channel::MakeChannel(channel::Backend::kLocal, 0, 1, rendezvous);
  ASSERT_TRUE(ch.ok());
  UNet2DConditionModel unet = RandomUNet(kTinyXl);
  auto plan = PlanForUNet(*unet, 16, 12, 1);
  ASSERT_TRUE(plan.ok());
  auto out = PatchParallelUNetForward(unet, **ch, *plan, in.sample, in.timestep, in.states, in.added);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  int hooked = 0;
  for (const auto& m : unet->modules()) {
    if (auto* layer = dynamic_cast<model::HookedLayer*>(m.get())) {
      ++hooked;
      EXPECT_EQ(layer->context(), nullptr) << layer->site().name;
    }
  }
  EXPECT_GT(hooked, 10);
  at::Tensor plain = unet->forward(in.sample, in.timestep, in.states, in.added);
  EXPECT_LT(RelativeError(*out, plain), 1e-5);
}

// A rank that fails mid-forward aborts the gang: the others return an error instead of
// waiting for a collective that never comes.
TEST(SyncPatchUNetErrors, AFailingRankAbortsTheGang) {
  const Inputs in = MakeInputs(true, 1, 16, 12);
  constexpr int kWorld = 3;
  channel::MemoryRendezvous rendezvous;
  std::vector<Status> statuses(kWorld);
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      c10::InferenceMode guard;
      auto ch = channel::MakeChannel(channel::Backend::kLocal, r, kWorld, rendezvous);
      if (!ch.ok()) {
        statuses[r] = ch.status();
        return;
      }
      UNet2DConditionModel unet = RandomUNet(kTinyXl);
      auto plan = PlanForUNet(*unet, 16, 12, kWorld);
      if (!plan.ok()) {
        statuses[r] = plan.status();
        return;
      }
      auto out = RunPatchParallelForward(*unet, **ch, *plan, in.sample, [&](const at::Tensor& strip) {
        if (r == 1) throw std::runtime_error("injected failure");
        return unet->forward(strip, in.timestep, in.states, in.added);
      });
      statuses[r] = out.status();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(statuses[1].code(), StatusCode::kInternal);
  EXPECT_NE(statuses[1].message().find("rank 1: injected failure"), std::string::npos) << statuses[1].ToString();
  for (int r : {0, 2}) {
    EXPECT_FALSE(statuses[r].ok()) << "rank " << r;
    EXPECT_NE(statuses[r].ToString().find("injected failure"), std::string::npos) << statuses[r].ToString();
  }
}

// The exchanges matter: strips run alone (naive patch parallelism) are far from the full
// forward on the same inputs, so the 1e-4 agreement above is not a property of the model.
TEST(SyncPatchUNetErrors, NaiveStripsAreFarFromTheFullForward) {
  const Inputs in = MakeInputs(true, 2, 16, 12);
  const at::Tensor expected = SingleDevice(kTinyXl, in);
  c10::InferenceMode guard;
  UNet2DConditionModel unet = RandomUNet(kTinyXl);
  auto plan = PlanForUNet(*unet, 16, 12, 2);
  ASSERT_TRUE(plan.ok());
  std::vector<at::Tensor> strips;
  for (int r = 0; r < 2; ++r) {
    const RowRange rows = plan->rows(r);
    strips.push_back(unet->forward(in.sample.narrow(2, rows.start, rows.rows()), in.timestep, in.states, in.added));
  }
  const double err = RelativeError(at::cat(strips, 2), expected);
  std::printf("[ metric ] naive_patch N=2 16x12 relative error %.3g\n", err);
  EXPECT_GT(err, 1e-2);
}

}  // namespace
}  // namespace distri::parallel
