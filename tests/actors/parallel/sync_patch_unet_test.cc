// Synchronous patch parallelism (full_sync) vs the single-device UNet: N = 1..4 ranks as
// threads over the local channel backend, even, uneven and ragged strips, CPU fp32.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>

#include <atomic>
#include <ostream>
#include <stdexcept>
#include <memory>
#include <string>
#include <vector>

#include "actors/model/blocks/layer_context.h"
#include "actors/model/unet/unet_2d_condition.h"
#include "actors/parallel/displaced_unet_runner.h"
#include "actors/parallel/patch_parallel_unet.h"
#include "runtime/channel/factory.h"
#include "runtime/channel/rendezvous.h"
#include "tests/actors/parallel/tiny_unet.h"
#include "tests/actors/unet/model_test_util.h"

namespace distri::parallel {
namespace {

using model::UNet2DConditionModel;
using model::testing::RelativeError;
using namespace distri::parallel::testing;
using Inputs = UNetInputs;

at::Tensor SingleDevice(const std::string& config, const Inputs& in) {
  c10::InferenceMode guard;
  UNet2DConditionModel unet = RandomUNet(config);
  return unet->forward(in.sample, in.timestep, in.states, in.added);
}

// Runs `world` ranks as threads; returns every rank's result.
std::vector<Result<at::Tensor>> RunGang(const std::string& config, const Inputs& in, int world) {
  channel::MemoryRendezvous rendezvous;
  std::vector<Result<at::Tensor>> results(world, Status::Internal("rank did not run"));
  OnRankThreads(world, [&](int r) {
    c10::InferenceMode guard;
    auto ch = LocalRank(r, world, rendezvous);
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
  return results;
}

struct Case {
  const char* name;
  std::string config;
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
    if (r > 0) {
      EXPECT_TRUE(at::equal(*results[r], *results[0])) << "rank " << r << " differs from rank 0";
    }
  }
}

// Row unit 4 for the XL config (two downsamplers), 2 for SD1.5 (one).
INSTANTIATE_TEST_SUITE_P(
    Strips, SyncPatchUNet,
    ::testing::Values(Case{"xl_n1", TinyXlConfig(), true, 16, 12, 1},
                      Case{"xl_even_n2", TinyXlConfig(), true, 16, 12, 2},   // 8 + 8
                      Case{"xl_even_n3", TinyXlConfig(), true, 24, 12, 3},   // 8 + 8 + 8
                      Case{"xl_even_n4", TinyXlConfig(), true, 16, 12, 4},   // 4 x 4
                      Case{"xl_uneven_n2", TinyXlConfig(), true, 20, 12, 2}, // 12 + 8
                      Case{"xl_uneven_n3", TinyXlConfig(), true, 16, 12, 3}, // 8 + 4 + 4
                      Case{"xl_uneven_n4", TinyXlConfig(), true, 24, 10, 4}, // 8 + 8 + 4 + 4, width 10 -> 5 -> 3
                      Case{"xl_ragged_n4", TinyXlConfig(), true, 18, 12, 4}, // 8 + 4 + 4 + 2
                      Case{"sd15_even_n2", TinySd15Config(), false, 12, 8, 2},
                      Case{"sd15_uneven_n3", TinySd15Config(), false, 14, 8, 3},  // 6 + 4 + 4
                      Case{"sd15_uneven_n4", TinySd15Config(), false, 10, 8, 4}), // 4 + 2 + 2 + 2
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// Channels-last strips (the GPU layout) keep their halo rows in that memory order in the
// exchange buffers and write their own rows and K/V straight into them in displaced steps: the
// same forwards as contiguous strips, step after step (one synchronous step, then displaced
// ones reading the stale buffers), on even and uneven strips, in two sync modes. Stale buffers
// laid out for collective memory (all chunks allocated and issued when the first step ends; the
// local channel has none, so one LibTorch block), in many small chunks, give the same bits; so
// do self-attention K/V read in place from their own chunks (kv_in_place), with and without,
// and 3x3 convolutions on concatenated halo + strip + halo instead of their group norm's
// padded output (norm_into_padded_strip off). The seam and wide forms of the strip convolutions
// (strip_conv kSeam: the strip alone, then its first and last rows again; kWide: symmetric
// padding, two rows dropped) give the same values (other arithmetic order: not the same bits)
// where they apply, and the convolutions where they do not (contiguous strips, one-row strips)
// fall back to the one convolution.
TEST(DisplacedRunner, ChannelsLastStripsEqualContiguousOnes) {
  struct Shape { int world; int64_t height; SyncMode mode; } shapes[] = {
      {2, 20, SyncMode::kCorrectedAsyncGn}, {3, 16, SyncMode::kCorrectedAsyncGn}, {2, 16, SyncMode::kStaleGn}};
  for (const Shape& sh : shapes) {
    const int64_t width = 12;
    const Inputs in = MakeInputs(/*text_time=*/true, /*batch=*/1, sh.height, width);
    auto run = [&](bool channels_last, bool collective_memory = false, bool kv_in_place = false,
                   bool padded_norm = true, model::StripConvForm strip_conv = model::StripConvForm::kHalo) {
      std::vector<std::vector<at::Tensor>> outs(sh.world);
      channel::MemoryRendezvous rendezvous;
      OnRankThreads(sh.world, [&](int r) {
        c10::InferenceMode guard;
        auto ch = LocalRank(r, sh.world, rendezvous);
        ASSERT_TRUE(ch.ok()) << ch.status().ToString();
        RunnerOptions o;
        o.warmup_steps = 1;
        o.context.mode = sh.mode;
        o.channels_last = channels_last;
        o.context.collective_memory = collective_memory;
        o.context.kv_in_place = kv_in_place;
        o.context.norm_into_padded_strip = padded_norm;
        o.context.strip_conv = strip_conv;
        if (collective_memory) o.context.chunk_bytes = 2048;
        auto runner = DisplacedUNetRunner::Create(RandomUNet(TinyXlConfig(), /*fused=*/true), ch->get(),
                                                  GangLayout{1, sh.world}, sh.height, width, o);
        ASSERT_TRUE(runner.ok()) << runner.status().ToString();
        ASSERT_TRUE((*runner)->SetConditioning(in.states, in.added).ok());
        // The pipeline hands channels-last latents to a channels-last runner (conv_in's halo
        // comes from them).
        const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
        at::Tensor x = in.sample.contiguous(format);
        for (int step = 0; step < 4; ++step) {
          auto out = (*runner)->Forward(step, x, in.timestep);
          ASSERT_TRUE(out.ok()) << out.status().ToString();
          outs[r].push_back(out->clone());
          x = (x - 0.1 * *out).contiguous(format);  // the next input depends on this output, as with a sampler
        }
        // Three displaced steps read every self-attention's K/V in place.
        if (kv_in_place) {
          EXPECT_GT((*runner)->kv_in_place_reads(), 0) << "rank " << r;
        }
        // Every ResNet's two convolutions (and conv_out) took their group norm's padded output.
        if (padded_norm) {
          EXPECT_GT((*runner)->padded_strip_convs(), 0) << "rank " << r;
        } else {
          EXPECT_EQ((*runner)->padded_strip_convs(), 0) << "rank " << r;
        }
        // kHalo (the default) takes one convolution; kSeam and kWide their form where it applies.
        const bool applies = channels_last;
        EXPECT_EQ((*runner)->seam_convs() > 0, strip_conv == model::StripConvForm::kSeam && applies) << "rank " << r;
        EXPECT_EQ((*runner)->wide_convs() > 0, strip_conv == model::StripConvForm::kWide && applies) << "rank " << r;
      });
      return outs;
    };
    const auto contiguous = run(false), channels_last = run(true), collective = run(true, true);
    const auto kv_in_place = run(true, false, true), kv_in_place_collective = run(true, true, true);
    const auto concatenated = run(true, false, false, /*padded_norm=*/false);
    const auto contiguous_concatenated = run(false, false, false, /*padded_norm=*/false);
    const auto seam = run(true, false, false, true, model::StripConvForm::kSeam);
    const auto seam_concatenated = run(true, false, false, /*padded_norm=*/false, model::StripConvForm::kSeam);
    const auto contiguous_seam = run(false, false, false, true, model::StripConvForm::kSeam);
    const auto wide = run(true, false, false, true, model::StripConvForm::kWide);
    for (int r = 0; r < sh.world; ++r) {
      ASSERT_EQ(contiguous[r].size(), 4u);
      ASSERT_EQ(channels_last[r].size(), 4u);
      ASSERT_EQ(collective[r].size(), 4u);
      for (int step = 0; step < 4; ++step) {
        EXPECT_LT(RelativeError(channels_last[r][step], contiguous[r][step]), 1e-5)
            << "world " << sh.world << " height " << sh.height << " rank " << r << " step " << step;
        EXPECT_TRUE(at::equal(collective[r][step], channels_last[r][step]))
            << "collective memory: world " << sh.world << " height " << sh.height << " rank " << r << " step " << step;
        EXPECT_TRUE(at::equal(kv_in_place[r][step], channels_last[r][step]))
            << "K/V in place: world " << sh.world << " height " << sh.height << " rank " << r << " step " << step;
        EXPECT_TRUE(at::equal(kv_in_place_collective[r][step], channels_last[r][step]))
            << "K/V in place, collective memory: world " << sh.world << " rank " << r << " step " << step;
        EXPECT_TRUE(at::equal(concatenated[r][step], channels_last[r][step]))
            << "halo concatenated: world " << sh.world << " height " << sh.height << " rank " << r << " step " << step;
        EXPECT_TRUE(at::equal(contiguous_concatenated[r][step], contiguous[r][step]))
            << "contiguous, halo concatenated: world " << sh.world << " rank " << r << " step " << step;
        EXPECT_LT(RelativeError(seam[r][step], channels_last[r][step]), 1e-5)
            << "seam form: world " << sh.world << " height " << sh.height << " rank " << r << " step " << step;
        EXPECT_TRUE(at::equal(seam_concatenated[r][step], seam[r][step]))
            << "seam form, halo concatenated: world " << sh.world << " rank " << r << " step " << step;
        EXPECT_LT(RelativeError(wide[r][step], channels_last[r][step]), 1e-5)
            << "wide form: world " << sh.world << " height " << sh.height << " rank " << r << " step " << step;
        EXPECT_TRUE(at::equal(contiguous_seam[r][step], contiguous[r][step]))
            << "seam form asked, contiguous strips: world " << sh.world << " rank " << r << " step " << step;
      }
    }
  }
}

// The copy-engine stale exchange needs the stale buffers on GPUs of one process: on CPU ranks
// every rank refuses when the first step ends (no collective reached: nobody waits), naming it.
TEST(DisplacedRunner, PeerExchangeOnCpuIsAClearError) {
  const int world = 2;
  const int64_t height = 16, width = 12;
  const Inputs in = MakeInputs(/*text_time=*/true, /*batch=*/1, height, width);
  channel::MemoryRendezvous rendezvous;
  OnRankThreads(world, [&](int r) {
    c10::InferenceMode guard;
    auto ch = LocalRank(r, world, rendezvous);
    ASSERT_TRUE(ch.ok()) << ch.status().ToString();
    RunnerOptions o;
    o.warmup_steps = 1;
    o.context.peer_exchange = true;
    auto runner = DisplacedUNetRunner::Create(RandomUNet(TinyXlConfig(), /*fused=*/true), ch->get(),
                                              GangLayout{1, world}, height, width, o);
    ASSERT_TRUE(runner.ok()) << runner.status().ToString();
    ASSERT_TRUE((*runner)->SetConditioning(in.states, in.added).ok());
    auto out = (*runner)->Forward(0, in.sample, in.timestep);
    ASSERT_FALSE(out.ok()) << "rank " << r;
    EXPECT_NE(std::string::npos, out.status().message().find("peer exchange")) << out.status().ToString();
  });
}

TEST(SyncPatchUNetErrors, TooSmallHeightIsAClearError) {
  // 8 latent rows are 2 units of 4: not enough for 4 ranks. Every rank refuses before any
  // collective, so nothing hangs.
  const Inputs in = MakeInputs(true, 1, 8, 8);
  auto results = RunGang(TinyXlConfig(), in, 4);
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
  UNet2DConditionModel unet = RandomUNet(TinyXlConfig());
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
  UNet2DConditionModel unet = RandomUNet(TinyXlConfig());
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
  OnRankThreads(kWorld, [&](int r) {
    c10::InferenceMode guard;
    auto ch = channel::MakeChannel(channel::Backend::kLocal, r, kWorld, rendezvous);
    if (!ch.ok()) {
      statuses[r] = ch.status();
      return;
    }
    UNet2DConditionModel unet = RandomUNet(TinyXlConfig());
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
  const at::Tensor expected = SingleDevice(TinyXlConfig(), in);
  c10::InferenceMode guard;
  UNet2DConditionModel unet = RandomUNet(TinyXlConfig());
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
