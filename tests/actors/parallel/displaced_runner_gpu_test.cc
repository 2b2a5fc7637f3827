// The displaced patch-parallel runner on two GPUs over NCCL (label multigpu): CUDA-graph
// replays equal eager forwards, and both equal the CPU runner over the local backend, step
// after step (one synchronous step, then displaced ones with the stale buffers written in place,
// channels-last strips), fp32 without TF32. Catches what only the GPU path does: graph capture
// of the exchanges, channels-last halo rows, the fused group-norm statistics.
#include <gtest/gtest.h>

#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>
#include <c10/cuda/CUDAGuard.h>

#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime_api.h>
#include <memory>
#include <string>
#include <vector>

#include "actors/model/blocks/attention.h"
#include "actors/model/blocks/module_loading.h"
#include "actors/model/unet/unet_2d_condition.h"
#include "actors/parallel/displaced_unet_runner.h"
#include "actors/parallel/peer_exchange.h"
#include "runtime/channel/factory.h"
#include "runtime/channel/rendezvous.h"
#include "tests/actors/parallel/tiny_unet.h"
#include "tests/actors/unet/model_test_util.h"

namespace distri::parallel {
namespace {

using namespace distri::parallel::testing;
using model::testing::RelativeError;

constexpr int kWorld = 2, kSteps = 6;
constexpr int64_t kHeight = 20, kWidth = 12;  // strips of 12 and 8 latent rows

// Every rank's output of every step.
using Outputs = std::vector<std::vector<at::Tensor>>;

// collective_memory: the stale buffers in one NCCL symmetric window; zero_sm: the channel with a
// zero CTA policy (all-gathers into the window on the copy engines). layout: 1 group of 2 strips
// (2 GPUs), or 2 CFG groups of 2 strips (4 GPUs: the 4-GPU render's layout, with a channel per
// group for the patch exchanges, as ParallelGenerator makes them).
Outputs RunGang(bool cuda, bool graphs, SyncMode mode, at::ScalarType dtype = at::kFloat,
                bool collective_memory = false, bool zero_sm = false, bool kv_in_place = false,
                GangLayout layout = GangLayout{1, kWorld}, bool fused_kv_assembly = true,
                bool peer_exchange = false, bool padded_norm = true,
                model::StripConvForm strip_conv = model::StripConvForm::kHalo) {
  const int world = layout.world_size();
  const UNetInputs in = MakeInputs(/*text_time=*/true, /*batch=*/layout.groups, kHeight, kWidth);
  Outputs outs(world);
  channel::MemoryRendezvous rendezvous;
  OnRankThreads(world, [&](int r) {
    c10::InferenceMode guard;
    std::optional<c10::cuda::CUDAGuard> device_guard;
    if (cuda) device_guard.emplace(static_cast<c10::DeviceIndex>(r));
    const c10::Device device = cuda ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(r)) : c10::Device(c10::kCPU);
    channel::ChannelOptions co;
    co.nccl_zero_sm = zero_sm && layout.groups == 1;
    auto ch = cuda ? channel::MakeChannel(channel::Backend::kNccl, r, world, rendezvous, co)
                   : LocalRank(r, world, rendezvous);
    ASSERT_TRUE(ch.ok()) << ch.status().ToString();
    std::unique_ptr<channel::Channel> group;
    if (layout.groups > 1) {
      channel::ChannelOptions go;
      go.rendezvous_prefix = "group" + std::to_string(layout.group_of(r));
      go.nccl_zero_sm = zero_sm;
      go.op_timeout = std::chrono::milliseconds(60'000);
      auto g = channel::MakeChannel(cuda ? channel::Backend::kNccl : channel::Backend::kLocal, layout.strip_of(r),
                                    layout.patch_ranks, rendezvous, go);
      ASSERT_TRUE(g.ok()) << g.status().ToString();
      group = std::move(g).value();
    }
    // As the pipeline loads a model on a GPU: weights moved, projections fused, channels-last
    // convolution weights.
    model::UNet2DConditionModel unet = RandomUNet(TinyXlConfig(), /*fused=*/false);
    unet->to(device, dtype);
    model::FuseAttentionProjections(*unet);
    if (cuda) model::SetConvWeightFormat(*unet, at::MemoryFormat::ChannelsLast);
    RunnerOptions o;
    o.warmup_steps = 1;
    o.cuda_graphs = graphs;
    o.context.mode = mode;
    o.context.collective_memory = collective_memory;
    o.context.kv_in_place = kv_in_place;
    o.context.fused_kv_assembly = fused_kv_assembly;
    o.context.peer_exchange = peer_exchange;
    o.context.norm_into_padded_strip = padded_norm;
    o.context.strip_conv = strip_conv;
    o.context.peer_exchange_timeout = std::chrono::seconds(5);  // a broken handshake fails, fast
    auto runner = DisplacedUNetRunner::Create(unet, ch->get(), layout, kHeight, kWidth, o, group.get());
    ASSERT_TRUE(runner.ok()) << runner.status().ToString();
    std::optional<model::UNetAddedConditions> added;
    if (in.added) {
      added = model::UNetAddedConditions{in.added->text_embeds.to(device, dtype), in.added->time_ids.to(device, dtype)};
    }
    ASSERT_TRUE((*runner)->SetConditioning(in.states.to(device, dtype), added).ok());
    const auto format = cuda ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    at::Tensor x = in.sample.to(device, dtype).contiguous(format);
    const at::Tensor t = in.timestep.reshape(-1)[0].to(device);  // the runner takes a 0-d timestep
    for (int step = 0; step < kSteps; ++step) {
      auto out = (*runner)->Forward(step, x, t);
      ASSERT_TRUE(out.ok()) << "step " << step << ": " << out.status().ToString();
      // Wait for the step with a stream synchronisation before the pageable copy: a thread that
      // waits inside a blocking copy keeps its device's context locked, and the peer exchange's
      // eager launches on the other rank's thread touch this device (docs: peer exchange).
      if (cuda) c10::cuda::getCurrentCUDAStream().synchronize();
      outs[r].push_back(out->to(at::kCPU, at::kFloat).clone());
      x = (x - 0.1 * *out).contiguous(format);  // the next input depends on this output
    }
    if (cuda) c10::cuda::getCurrentCUDAStream().synchronize();
    // The variants ran, not their fallbacks (our GPU machines have NVLink: symmetric memory).
    // full_sync exchanges nothing stale: no window, no K/V to read in place.
    if (mode == SyncMode::kFullSync) {
      EXPECT_EQ((*runner)->collective_bytes(), 0) << "rank " << r << ": full_sync allocated stale buffers";
      EXPECT_EQ((*runner)->kv_in_place_reads(), 0) << "rank " << r << ": full_sync read stale K/V";
    } else if (collective_memory) {
      EXPECT_GT((*runner)->collective_bytes(), 0) << "rank " << r << ": no symmetric window";
    }
    if (kv_in_place && mode != SyncMode::kFullSync) {
      EXPECT_GT((*runner)->kv_in_place_reads(), 0) << "rank " << r << ": K/V never read in place";
    }
    // Group norms + SiLU write padded strips that the convolutions take (the fused GPU kernel
    // and the ATen path alike), unless told not to.
    if (padded_norm) {
      EXPECT_GT((*runner)->padded_strip_convs(), 0) << "rank " << r << ": no convolution took a padded norm output";
    } else {
      EXPECT_EQ((*runner)->padded_strip_convs(), 0) << "rank " << r << ": a convolution took a padded norm output";
    }
    // The copy-engine exchange runs in captured steps only (eager steps keep the all-gathers).
    if (peer_exchange && mode != SyncMode::kFullSync) {
      if (graphs) {
        EXPECT_GT((*runner)->peer_publishes(), 0) << "rank " << r << ": no chunk went over the copy engines";
      } else {
        EXPECT_EQ((*runner)->peer_publishes(), 0) << "rank " << r << ": an eager step used the copy engines";
      }
    }
    // Asked for, the seam form ran (GPU strips are channels-last, one image per rank here).
    if (strip_conv == model::StripConvForm::kSeam && cuda && layout.groups == 1) {
      EXPECT_GT((*runner)->seam_convs(), 0) << "rank " << r << ": no convolution in the seam form";
    } else if (strip_conv == model::StripConvForm::kWide && cuda && layout.groups == 1) {
      EXPECT_GT((*runner)->wide_convs(), 0) << "rank " << r << ": no convolution in the wide form";
    } else if (strip_conv == model::StripConvForm::kHalo) {
      EXPECT_EQ((*runner)->seam_convs() + (*runner)->wide_convs(), 0) << "rank " << r << ": another form with kHalo";
    }
    // fp16 displaced steps assemble their K/V with the fused kernel unless told not to.
    if (!fused_kv_assembly || !cuda || dtype == at::kFloat || mode == SyncMode::kFullSync) {
      EXPECT_EQ((*runner)->kv_fused_assemblies(), 0) << "rank " << r << ": fused K/V assembly ran";
    } else if (!kv_in_place) {
      EXPECT_GT((*runner)->kv_fused_assemblies(), 0) << "rank " << r << ": fused K/V assembly never ran";
    }
  });
  return outs;
}

class DisplacedRunnerGpu : public ::testing::TestWithParam<SyncMode> {
 protected:
  void SetUp() override {
    if (!at::hasCUDA() || at::getNumGPUs() < kWorld) GTEST_SKIP() << "needs " << kWorld << " GPUs";
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
};

// Every rank's every step of `got` within `bound` (relative) of `want`; prints the errors as
// metrics labelled `what`.
void ExpectStepsClose(const Outputs& got, const Outputs& want, double bound, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t r = 0; r < got.size(); ++r) {
    ASSERT_EQ(got[r].size(), static_cast<size_t>(kSteps)) << what << " rank " << r;
    ASSERT_EQ(want[r].size(), static_cast<size_t>(kSteps)) << what << " rank " << r;
    for (int s = 0; s < kSteps; ++s) {
      const double err = RelativeError(got[r][s], want[r][s]);
      std::printf("[ metric ] %s rank %zu step %d: %.3g\n", what.c_str(), r, s, err);
      EXPECT_LT(err, bound) << what << " rank " << r << " step " << s;
    }
  }
}

TEST_P(DisplacedRunnerGpu, GraphsEqualEagerAndTheCpu) {
  const SyncMode mode = GetParam();
  const std::string name(SyncModeName(mode));
  const Outputs cpu = RunGang(/*cuda=*/false, /*graphs=*/false, mode);
  const Outputs eager = RunGang(/*cuda=*/true, /*graphs=*/false, mode);
  const Outputs graphs = RunGang(/*cuda=*/true, /*graphs=*/true, mode);
  ExpectStepsClose(graphs, eager, 1e-5, name + " graphs vs eager");
  ExpectStepsClose(eager, cpu, 1e-3, name + " GPU vs CPU");
}

// fp16, where the fused group-norm kernels (statistics, combination with the stale packets)
// run: replays equal eager forwards, and fp16 stays near fp32.
TEST_P(DisplacedRunnerGpu, HalfGraphsEqualEagerAndStayNearFp32) {
  const SyncMode mode = GetParam();
  const std::string name(SyncModeName(mode));
  const Outputs fp32 = RunGang(/*cuda=*/true, /*graphs=*/false, mode);
  const Outputs eager = RunGang(/*cuda=*/true, /*graphs=*/false, mode, at::kHalf);
  const Outputs graphs = RunGang(/*cuda=*/true, /*graphs=*/true, mode, at::kHalf);
  ExpectStepsClose(graphs, eager, 1e-3, "fp16 " + name + " graphs vs eager");
  ExpectStepsClose(eager, fp32, 3e-2, "fp16 " + name + " fp16 vs fp32");
}

// fp16 with the stale buffers in collective memory (NCCL's symmetric kernels, and the copy
// engines under a zero CTA policy): graph replays give the same bits as eager forwards with
// ordinary buffers (the exchange moves the same bytes).
TEST_P(DisplacedRunnerGpu, CollectiveMemoryGivesTheSameBits) {
  const SyncMode mode = GetParam();
  const std::string name(SyncModeName(mode));
  const Outputs plain = RunGang(/*cuda=*/true, /*graphs=*/false, mode, at::kHalf);
  const Outputs collective = RunGang(/*cuda=*/true, /*graphs=*/true, mode, at::kHalf, /*collective_memory=*/true);
  ExpectStepsClose(collective, plain, 1e-12, "fp16 " + name + " collective memory vs plain");
  const Outputs zero_sm =
      RunGang(/*cuda=*/true, /*graphs=*/true, mode, at::kHalf, /*collective_memory=*/true, /*zero_sm=*/true);
  ExpectStepsClose(zero_sm, plain, 1e-12, "fp16 " + name + " collective memory on the copy engines vs plain");
}

// fp16, self-attention K/V read in place from their own chunks (the all-gather issued after the
// attention), in collective memory: graph replays give the same bits as plain eager forwards.
TEST_P(DisplacedRunnerGpu, KeyValueInPlaceGivesTheSameBits) {
  const SyncMode mode = GetParam();
  const std::string name(SyncModeName(mode));
  const Outputs plain = RunGang(/*cuda=*/true, /*graphs=*/false, mode, at::kHalf);
  const Outputs in_place = RunGang(/*cuda=*/true, /*graphs=*/true, mode, at::kHalf, /*collective_memory=*/true,
                                   /*zero_sm=*/false, /*kv_in_place=*/true);
  ExpectStepsClose(in_place, plain, 1e-12, "fp16 " + name + " K/V in place vs plain");
}

// fp16: the fused K/V assembly kernel gives the same bits as the two concatenations, eager and
// in graph replays (it only copies).
TEST_P(DisplacedRunnerGpu, FusedKeyValueAssemblyGivesTheSameBits) {
  const SyncMode mode = GetParam();
  const std::string name(SyncModeName(mode));
  const GangLayout layout{1, kWorld};
  const Outputs two = RunGang(/*cuda=*/true, /*graphs=*/false, mode, at::kHalf, false, false, false, layout,
                              /*fused_kv_assembly=*/false);
  const Outputs fused = RunGang(/*cuda=*/true, /*graphs=*/false, mode, at::kHalf, false, false, false, layout);
  ExpectStepsClose(fused, two, 1e-12, "fp16 " + name + " fused K/V assembly vs concatenations, eager");
  const Outputs fused_graphs =
      RunGang(/*cuda=*/true, /*graphs=*/true, mode, at::kHalf, /*collective_memory=*/true, false, false, layout);
  ExpectStepsClose(fused_graphs, two, 1e-12, "fp16 " + name + " fused K/V assembly vs concatenations, graphs");
}

// fp16: 3x3 convolutions on their group norm's padded output (halo rows filled in place) give
// the same bits as on concatenated halo + strip + halo, eager and in graph replays.
TEST_P(DisplacedRunnerGpu, PaddedNormOutputGivesTheSameBits) {
  const SyncMode mode = GetParam();
  const std::string name(SyncModeName(mode));
  const GangLayout layout{1, kWorld};
  const Outputs cat = RunGang(/*cuda=*/true, /*graphs=*/false, mode, at::kHalf, false, false, false, layout, true,
                              false, /*padded_norm=*/false);
  const Outputs padded = RunGang(/*cuda=*/true, /*graphs=*/false, mode, at::kHalf);
  ExpectStepsClose(padded, cat, 1e-12, "fp16 " + name + " padded norm output vs concatenation, eager");
  const Outputs padded_graphs = RunGang(/*cuda=*/true, /*graphs=*/true, mode, at::kHalf);
  ExpectStepsClose(padded_graphs, cat, 1e-12, "fp16 " + name + " padded norm output vs concatenation, graphs");
}

// fp16: 3x3 strip convolutions in the seam form (the strip alone with zero padding, then its
// first and last output rows again from halo + two strip rows) and in the wide form (halo +
// strip + halo with padding (1, 1), two output rows dropped) give the one-convolution form's
// values within fp16 rounding (other cuDNN kernels: not the same bits), eager and in graph
// replays.
TEST_P(DisplacedRunnerGpu, SeamAndWideConvolutionsMatchTheHaloForm) {
  const SyncMode mode = GetParam();
  const std::string name(SyncModeName(mode));
  const GangLayout layout{1, kWorld};
  auto run = [&](bool graphs, model::StripConvForm form) {
    return RunGang(/*cuda=*/true, graphs, mode, at::kHalf, false, false, false, layout, true, false, true, form);
  };
  const Outputs halo = run(false, model::StripConvForm::kHalo);
  const Outputs seam = run(false, model::StripConvForm::kSeam);
  ExpectStepsClose(seam, halo, 1e-2, "fp16 " + name + " seam vs halo convolutions, eager");
  const Outputs seam_graphs = run(true, model::StripConvForm::kSeam);
  ExpectStepsClose(seam_graphs, seam, 1e-3, "fp16 " + name + " seam convolutions, graphs vs eager");
  const Outputs wide = run(false, model::StripConvForm::kWide);
  ExpectStepsClose(wide, halo, 1e-2, "fp16 " + name + " wide vs halo convolutions, eager");
  const Outputs wide_graphs = run(true, model::StripConvForm::kWide);
  ExpectStepsClose(wide_graphs, wide, 1e-3, "fp16 " + name + " wide convolutions, graphs vs eager");
  // kAuto timed each strip shape once and kept a form for it.
  EXPECT_FALSE(run(true, model::StripConvForm::kAuto).empty());
  EXPECT_FALSE(model::StripConvChoices().empty()) << "kAuto timed no strip shape";
  for (const std::string& line : model::StripConvChoices()) std::printf("[ metric ] strip conv %s\n", line.c_str());
}

// fp16: the stale chunks copied between the GPUs over the copy engines (PeerExchange: flags in
// GPU memory) give the same bits as NCCL's all-gathers in graph replays; eager steps with the
// option keep the all-gathers (into the exchange's block) and give the same bits too.
// The peer exchange needs eager kernel loading (PeerExchange::Create); run_parallel_bench.sh's
// gpu-tests stage runs these cases apart with CUDA_MODULE_LOADING=EAGER.
bool EagerLoading() {
  const char* loading = std::getenv("CUDA_MODULE_LOADING");
  return loading != nullptr && std::string(loading) == "EAGER";
}

TEST_P(DisplacedRunnerGpu, PeerExchangeGivesTheSameBits) {
  if (!EagerLoading()) GTEST_SKIP() << "needs CUDA_MODULE_LOADING=EAGER (the gpu-tests stage sets it)";
  const SyncMode mode = GetParam();
  const std::string name(SyncModeName(mode));
  const GangLayout layout{1, kWorld};
  const Outputs plain = RunGang(/*cuda=*/true, /*graphs=*/false, mode, at::kHalf);
  const Outputs peer_eager = RunGang(/*cuda=*/true, /*graphs=*/false, mode, at::kHalf, false, false, false, layout,
                                     true, /*peer_exchange=*/true);
  ExpectStepsClose(peer_eager, plain, 1e-12, "fp16 " + name + " peer exchange vs all-gathers, eager");
  const Outputs peer_graphs = RunGang(/*cuda=*/true, /*graphs=*/true, mode, at::kHalf, false, false, false, layout,
                                      true, /*peer_exchange=*/true);
  ExpectStepsClose(peer_graphs, plain, 1e-12, "fp16 " + name + " peer exchange vs all-gathers, graphs");
}

// A rank that stops in the middle of a step (publishes nothing) does not hang its peer: the
// peer's wait gives up after the timeout, its stream goes on, and Check names the rank and
// chunk it waited for.
TEST(PeerExchangeGpu, AWaitForAStoppedRankGivesUp) {
  if (!at::hasCUDA() || at::getNumGPUs() < 2) GTEST_SKIP() << "needs 2 GPUs";
  if (!EagerLoading()) GTEST_SKIP() << "needs CUDA_MODULE_LOADING=EAGER (the gpu-tests stage sets it)";
  std::vector<std::vector<int64_t>> values(2);
  std::barrier sync(2);
  auto all_gather = [&](int r) {
    return [&, r](const std::vector<int64_t>& mine) {
      values[static_cast<size_t>(r)] = mine;
      sync.arrive_and_wait();
      return Result<std::vector<std::vector<int64_t>>>(values);
    };
  };
  std::vector<std::unique_ptr<PeerExchange>> exchanges(2);
  OnRankThreads(2, [&](int r) {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(r));
    PeerExchange::Layout layout;
    layout.chunk_base = {0};
    layout.slot_offset = {{0, 512}};
    layout.slot_bytes = {{512, 512}};
    auto made = PeerExchange::Create(r, 2, r, 1024, layout, all_gather(r), std::chrono::milliseconds(200));
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    exchanges[static_cast<size_t>(r)] = std::move(made).value();
  });
  ASSERT_TRUE(exchanges[0] && exchanges[1]);
  // Rank 0 writes and publishes its chunk; rank 1 never does.
  {
    c10::cuda::CUDAGuard guard(0);
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaSuccess, cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    ASSERT_TRUE(exchanges[0]->BeforeWrite(0, stream).ok());
    ASSERT_TRUE(exchanges[0]->Publish(0, stream).ok());
    ASSERT_TRUE(exchanges[0]->Join(stream).ok());
    ASSERT_EQ(cudaSuccess, cudaStreamSynchronize(stream)) << "the wait for rank 1 did not give up";
    const Status st = exchanges[0]->Check();
    EXPECT_EQ(StatusCode::kDeadlineExceeded, st.code()) << st.ToString();
    EXPECT_NE(std::string::npos, st.message().find("rank 1")) << st.message();
    EXPECT_NE(std::string::npos, st.message().find("chunk 0")) << st.message();
    ASSERT_EQ(cudaSuccess, cudaStreamDestroy(stream));
  }
  EXPECT_TRUE(exchanges[1]->Check().ok());  // rank 1 waited for nothing
  // The blocks were zeroed, and a block outlives its exchange while someone holds it.
  std::shared_ptr<void> block0 = exchanges[0]->block();
  ASSERT_NE(nullptr, block0.get());
  exchanges[0].reset();
  exchanges[1].reset();
  std::vector<uint8_t> host(1024, 0xff);
  ASSERT_EQ(cudaSuccess, cudaMemcpy(host.data(), block0.get(), host.size(), cudaMemcpyDeviceToHost));
  EXPECT_EQ(std::vector<uint8_t>(1024, 0), host);
}

// The 4-GPU layout: two CFG groups of two strips, a channel per group, fp32 without TF32: the
// GPU's graph replays with the stale buffers in symmetric windows (and K/V read in place) equal
// the CPU runner over local channels, step after step.
TEST(DisplacedRunnerGpu4, CfgSplitGangMatchesTheCpu) {
  if (!at::hasCUDA() || at::getNumGPUs() < 4) GTEST_SKIP() << "needs 4 GPUs";
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  const GangLayout layout{2, 2};
  for (bool kv_in_place : {false, true}) {
    const std::string what = std::string("cfg split, ") + (kv_in_place ? "K/V in place" : "K/V concatenated");
    const Outputs cpu = RunGang(/*cuda=*/false, /*graphs=*/false, SyncMode::kCorrectedAsyncGn, at::kFloat,
                                /*collective_memory=*/false, /*zero_sm=*/false, kv_in_place, layout);
    const Outputs gpu = RunGang(/*cuda=*/true, /*graphs=*/true, SyncMode::kCorrectedAsyncGn, at::kFloat,
                                /*collective_memory=*/true, /*zero_sm=*/false, kv_in_place, layout);
    ExpectStepsClose(gpu, cpu, 1e-3, what + " GPU (graphs, window) vs CPU");
  }
}

// The copy-engine all-gathers (zero CTA policy) in the 4-GPU layout: parallel_bench --zero-sm
// failed there with "CUDA error: unknown error" (2026-11-28, 4x H200). Disabled until that is
// understood; run with --gtest_also_run_disabled_tests to investigate.
TEST(DisplacedRunnerGpu4, DISABLED_CfgSplitGangOnTheCopyEngines) {
  if (!at::hasCUDA() || at::getNumGPUs() < 4) GTEST_SKIP() << "needs 4 GPUs";
  const GangLayout layout{2, 2};
  const Outputs plain = RunGang(/*cuda=*/true, /*graphs=*/false, SyncMode::kCorrectedAsyncGn, at::kHalf,
                                /*collective_memory=*/false, /*zero_sm=*/false, /*kv_in_place=*/false, layout);
  const Outputs ce = RunGang(/*cuda=*/true, /*graphs=*/true, SyncMode::kCorrectedAsyncGn, at::kHalf,
                             /*collective_memory=*/true, /*zero_sm=*/true, /*kv_in_place=*/false, layout);
  ExpectStepsClose(ce, plain, 1e-12, "cfg split on the copy engines vs plain");
}

INSTANTIATE_TEST_SUITE_P(Modes, DisplacedRunnerGpu,
                         ::testing::Values(SyncMode::kCorrectedAsyncGn, SyncMode::kStaleGn, SyncMode::kFullSync),
                         [](const auto& info) { return std::string(SyncModeName(info.param)); });

}  // namespace
}  // namespace distri::parallel
