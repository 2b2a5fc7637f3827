// GenerateParallel on CPU over the local channel (threads): the whole denoising loop of a tiny
// SDXL-architecture model, each rank with its own pipeline (same weights).
//   - synchronous (full_sync, or warm-up >= steps): the final latent equals one device's
//     Pipeline::Generate within 1e-4 relative (N = 2, 3, 4; with and without the CFG split;
//     uneven strips at N = 3);
//   - displaced (async) modes: their error against one device is reported and is smaller than
//     naive_patch's on the same inputs;
//   - tensor parallelism (N = 2, 4): the final latent equals one device's within 1e-4 relative;
//     a gang that does not divide the heads (N = 3) is a clear error on every rank.
#include "actors/parallel/parallel_generate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "actors/pipeline/model_init.h"
#include "runtime/channel/factory.h"

namespace distri::parallel {
namespace {

using pipeline::GenerateParams;
using pipeline::GenerateResult;
using pipeline::Pipeline;

class GenerateParallelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = ::testing::TempDir() + "/distri_generate_parallel_" + std::to_string(::getpid());
    pipeline::ModelInitOptions o;
    o.arch = "sdxl-tiny";
    Status s = pipeline::InitRandomModel(dir_, o);
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto pipe = Pipeline::Load(dir_, pipeline::LoadOptions{});
    ASSERT_TRUE(pipe.ok()) << pipe.status().ToString();
    reference_ = new GenerateResult();
    auto r = (*pipe)->Generate(Params());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    *reference_ = std::move(*r);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(dir_);
    delete reference_;
  }

  static GenerateParams Params() {
    GenerateParams p;
    p.prompt = "a lighthouse on a cliff, stormy sea";
    p.negative_prompt = "blurry";
    p.height = 128;  // latent 16 rows: room for 4 strips of the tiny UNet
    p.width = 64;
    p.steps = 6;
    p.guidance = 5.0;
    p.seed = 11;
    return p;
  }

  // Runs `world` ranks as threads; returns rank 0's result (and checks all ranks agree).
  static Result<GenerateResult> RunGang(int world, ParallelOptions options, GenerateParams params = Params(),
                                        bool group_channels = false) {
    channel::MemoryRendezvous rendezvous;
    std::vector<Result<GenerateResult>> results(world, Status::Internal("not run"));
    std::vector<std::thread> threads;
    for (int r = 0; r < world; ++r) {
      threads.emplace_back([&, r] {
        auto pipe = Pipeline::Load(dir_, pipeline::LoadOptions{});
        if (!pipe.ok()) {
          results[r] = pipe.status();
          return;
        }
        auto ch = channel::MakeChannel(channel::Backend::kLocal, r, world, rendezvous);
        if (!ch.ok()) {
          results[r] = ch.status();
          return;
        }
        ParallelOptions o = options;
        if (group_channels) {
          o.make_group_channel = [&](int g, int rank, int size) {
            channel::ChannelOptions co;
            co.rendezvous_prefix = "group" + std::to_string(g);
            return channel::MakeChannel(channel::Backend::kLocal, rank, size, rendezvous, co);
          };
        }
        results[r] = GenerateParallel(**pipe, params, ch->get(), o);
      });
    }
    for (auto& t : threads) t.join();
    for (int r = 1; r < world; ++r) {
      if (!results[r].ok()) return results[r].status();
      if (results[0].ok() && !at::equal(results[r]->latents, results[0]->latents)) {
        return Status::Internal("rank " + std::to_string(r) + "'s latents differ from rank 0's");
      }
    }
    return std::move(results[0]);
  }

  static double RelativeError(const at::Tensor& a, const at::Tensor& b) {
    return ((a - b).norm() / b.norm()).item<double>();
  }
  static double RelativeError(const at::Tensor& a) { return RelativeError(a, reference_->latents); }

  // One device's result of `params` (a job other than Params(), whose result is reference_).
  static Result<GenerateResult> OneDevice(const GenerateParams& params) {
    auto pipe = Pipeline::Load(dir_, pipeline::LoadOptions{});
    if (!pipe.ok()) return pipe.status();
    return (*pipe)->Generate(params);
  }

  static std::string dir_;
  static GenerateResult* reference_;
};
std::string GenerateParallelTest::dir_;
GenerateResult* GenerateParallelTest::reference_ = nullptr;

struct SyncCase {
  int world;
  bool split_cfg;
  bool full_sync;  // else warm-up >= steps in the default mode
};

class SynchronousGang : public GenerateParallelTest, public ::testing::WithParamInterface<SyncCase> {};

TEST_P(SynchronousGang, MatchesOneDevice) {
  const SyncCase c = GetParam();
  ParallelOptions o;
  o.split_cfg = c.split_cfg;
  if (c.full_sync) {
    o.sync_mode = "full_sync";
  } else {
    o.warmup_steps = Params().steps;
  }
  auto r = RunGang(c.world, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const double err = RelativeError(r->latents);
  std::printf("[ sync ] world %d split_cfg %d %s: relative error %.3g\n", c.world, c.split_cfg,
              c.full_sync ? "full_sync" : "warm-up only", err);
  EXPECT_LT(err, 1e-4);
  EXPECT_EQ(r->image.width, 64);
  EXPECT_EQ(r->image.height, 128);
  EXPECT_EQ(r->image.pixels.size(), reference_->image.pixels.size());
}

INSTANTIATE_TEST_SUITE_P(Gangs, SynchronousGang,
                         ::testing::Values(SyncCase{2, false, true}, SyncCase{2, true, true}, SyncCase{3, false, true},
                                           SyncCase{4, true, true}, SyncCase{4, false, false},
                                           SyncCase{3, false, false}),
                         [](const auto& info) {
                           return "world" + std::to_string(info.param.world) +
                                  (info.param.split_cfg ? "_split" : "_nosplit") +
                                  (info.param.full_sync ? "_fullsync" : "_warmup");
                         });

TEST_F(GenerateParallelTest, DisplacedModesBeatNaivePatch) {
  constexpr int kWorld = 4;
  ParallelOptions naive;
  naive.parallelism = "naive_patch";
  naive.split_cfg = false;
  auto n = RunGang(kWorld, naive);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  const double naive_err = RelativeError(n->latents);
  std::printf("[ async ] world %d naive_patch: relative error %.4g\n", kWorld, naive_err);
  for (const char* mode : {"corrected_async_gn", "stale_gn", "sync_gn", "separate_gn", "no_sync"}) {
    ParallelOptions o;
    o.sync_mode = mode;
    o.warmup_steps = 2;
    o.split_cfg = false;
    auto r = RunGang(kWorld, o);
    ASSERT_TRUE(r.ok()) << mode << ": " << r.status().ToString();
    const double err = RelativeError(r->latents);
    std::printf("[ async ] world %d %s (warm-up 2 of %d): relative error %.4g\n", kWorld, mode, Params().steps, err);
    EXPECT_GT(err, 0) << mode << " should differ from the exact result after warm-up";
    EXPECT_LT(err, naive_err) << mode;
  }
}

// With the CFG split, per-group channels carry the patch exchanges: same results as exchanging
// over the whole gang (synchronous: one device's latent; displaced: bit-identical to the
// gang-wide exchange, since the data exchanged is the same).
TEST_F(GenerateParallelTest, GroupChannelsGiveTheSameResults) {
  ParallelOptions o;
  o.sync_mode = "full_sync";
  auto sync = RunGang(4, o, Params(), /*group_channels=*/true);
  ASSERT_TRUE(sync.ok()) << sync.status().ToString();
  EXPECT_LT(RelativeError(sync->latents), 1e-4);
  o = ParallelOptions{};
  o.warmup_steps = 2;
  auto gang_wide = RunGang(4, o);
  auto grouped = RunGang(4, o, Params(), /*group_channels=*/true);
  ASSERT_TRUE(gang_wide.ok()) << gang_wide.status().ToString();
  ASSERT_TRUE(grouped.ok()) << grouped.status().ToString();
  EXPECT_TRUE(at::equal(gang_wide->latents, grouped->latents));
}

// The VAE decode split across the gang (exact halos, statistics and attention K/V) gives the
// single-device decode of the same latents: compare both decodes of rank 0's final latents.
TEST_F(GenerateParallelTest, ParallelVaeDecodeEqualsOneDevice) {
  for (int world : {2, 3}) {
    ParallelOptions o;
    o.sync_mode = "full_sync";
    o.split_cfg = false;
    o.parallel_vae = true;
    auto split = RunGang(world, o);
    ASSERT_TRUE(split.ok()) << split.status().ToString();
    auto pipe = Pipeline::Load(dir_, pipeline::LoadOptions{});
    ASSERT_TRUE(pipe.ok());
    auto whole = (*pipe)->DecodeLatents(split->latents);
    ASSERT_TRUE(whole.ok()) << whole.status().ToString();
    ASSERT_EQ(split->image.pixels.size(), whole->pixels.size());
    int max_diff = 0;
    for (size_t i = 0; i < whole->pixels.size(); ++i) {
      max_diff = std::max(max_diff, std::abs(int(split->image.pixels[i]) - int(whole->pixels[i])));
    }
    std::printf("[ vae ] world %d: max 8-bit difference of the split decode vs one device: %d\n", world, max_diff);
    EXPECT_LE(max_diff, 1) << world;
  }
}

// num_images > 1: the batch goes through the gang as [uncond x N, cond x N] (one CFG group per
// half of the gang, each patch-parallel over batch N), and every image is decoded (the parallel
// decode one image after the other).
TEST_F(GenerateParallelTest, SeveralImagesPerJobEqualOneDevice) {
  GenerateParams params = Params();
  params.num_images = 2;
  auto one = OneDevice(params);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_EQ(one->latents.size(0), 2);
  ASSERT_EQ(one->extra_images.size(), 1u);
  // Image 1's noise is the start of the same draw as the one-image job's, and guidance and the
  // sampler work per image: it is that job's image (up to batch rounding); image 2 is another.
  EXPECT_LT(RelativeError(one->latents.narrow(0, 0, 1)), 1e-5);
  EXPECT_GT((one->latents[1] - one->latents[0]).abs().max().item<double>(), 0.1);
  EXPECT_NE(one->image.pixels, one->extra_images[0].pixels);
  struct Gang { int world; bool parallel_vae; const char* parallelism; };
  for (const Gang g : {Gang{4, true, "patch"}, Gang{2, false, "patch"}, Gang{2, false, "tensor"}}) {
    ParallelOptions o;
    o.sync_mode = "full_sync";
    o.parallel_vae = g.parallel_vae;
    o.parallelism = g.parallelism;
    auto r = RunGang(g.world, o, params, /*group_channels=*/true);
    ASSERT_TRUE(r.ok()) << g.world << " " << g.parallelism << ": " << r.status().ToString();
    const double err = RelativeError(r->latents, one->latents);
    std::printf("[ batch ] %d images, world %d %s: relative error %.3g\n", params.num_images, g.world,
                g.parallelism, err);
    EXPECT_LT(err, 1e-4) << g.world << " " << g.parallelism;
    ASSERT_EQ(r->extra_images.size(), 1u);
    for (int k = 0; k < 2; ++k) {
      const auto& got = k == 0 ? r->image.pixels : r->extra_images[0].pixels;
      const auto& want = k == 0 ? one->image.pixels : one->extra_images[0].pixels;
      ASSERT_EQ(got.size(), want.size());
      int max_diff = 0;
      for (size_t i = 0; i < got.size(); ++i) max_diff = std::max(max_diff, std::abs(int(got[i]) - int(want[i])));
      EXPECT_LE(max_diff, 1) << "image " << k << ", world " << g.world << " " << g.parallelism;
    }
  }
}

// guidance_rescale needs the whole prediction's per-image std: every rank has it after the
// gang's forward, so a gang equals one device.
TEST_F(GenerateParallelTest, GuidanceRescaleEqualsOneDevice) {
  GenerateParams params = Params();
  params.guidance_rescale = 0.7;
  auto one = OneDevice(params);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_GT(RelativeError(one->latents), 1e-3) << "guidance_rescale changed nothing";
  ParallelOptions o;
  o.sync_mode = "full_sync";
  auto r = RunGang(4, o, params, /*group_channels=*/true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const double err = RelativeError(r->latents, one->latents);
  std::printf("[ rescale ] world 4: relative error %.3g\n", err);
  EXPECT_LT(err, 1e-4);
}

TEST_F(GenerateParallelTest, TensorParallelMatchesOneDevice) {
  for (int world : {2, 4}) {
    ParallelOptions o;
    o.parallelism = "tensor";
    auto r = RunGang(world, o);  // also checks that every rank has the same latents
    ASSERT_TRUE(r.ok()) << world << ": " << r.status().ToString();
    const double err = RelativeError(r->latents);
    std::printf("[ tensor ] world %d: relative error %.3g\n", world, err);
    EXPECT_LT(err, 1e-4) << world;
    EXPECT_EQ(r->image.width, 64);
    EXPECT_EQ(r->image.height, 128);
  }
}

TEST_F(GenerateParallelTest, TensorParallelTakesGangsThatDoNotDivideTheHeads) {
  // The tiny SDXL has 4 heads per attention layer: 3 ranks take 2, 1 and 1 of them.
  ParallelOptions o;
  o.parallelism = "tensor";
  auto r = RunGang(3, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const double err = RelativeError(r->latents);
  std::printf("[ tensor ] world 3 (uneven heads): relative error %.3g\n", err);
  EXPECT_LT(err, 1e-4);
  // More ranks than heads: a clear refusal on every rank, before any collective.
  auto big = RunGang(5, o);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kInvalidArgument) << big.status().ToString();
  EXPECT_NE(big.status().message().find("has 4 attention heads, fewer than the gang's 5 ranks"), std::string::npos)
      << big.status().ToString();
}

TEST_F(GenerateParallelTest, OneRankWithoutChannelEqualsThePipeline) {
  auto pipe = Pipeline::Load(dir_, pipeline::LoadOptions{});
  ASSERT_TRUE(pipe.ok());
  auto r = GenerateParallel(**pipe, Params(), nullptr, ParallelOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(at::equal(r->latents, reference_->latents));
}

// A generator keeps its runner between jobs of one size: the second job (other prompt, other
// seed) must equal the same job run by a fresh generator, i.e. nothing of the first job's text
// conditioning (static buffers, cached cross-attention K/V) leaks into it.
TEST_F(GenerateParallelTest, ReusedGeneratorEqualsFreshOne) {
  constexpr int kWorld = 2;
  GenerateParams second = Params();
  second.prompt = "a red bicycle";
  second.negative_prompt = "";
  second.seed = 99;
  ParallelOptions o;
  o.split_cfg = false;
  o.warmup_steps = 2;
  auto fresh = RunGang(kWorld, o, second);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  channel::MemoryRendezvous rendezvous;
  std::vector<at::Tensor> reused(kWorld);
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      auto pipe = Pipeline::Load(dir_, pipeline::LoadOptions{});
      auto ch = channel::MakeChannel(channel::Backend::kLocal, r, kWorld, rendezvous);
      if (!pipe.ok() || !ch.ok()) return;
      ParallelGenerator generator(**pipe, ch->get(), o);
      if (!generator.Generate(Params()).ok()) return;
      auto b = generator.Generate(second);
      if (b.ok()) reused[r] = b->latents;
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(reused[0].defined());
  EXPECT_TRUE(at::equal(reused[0], fresh->latents));
}

TEST_F(GenerateParallelTest, BadOptionsAreClearErrors) {
  auto pipe = Pipeline::Load(dir_, pipeline::LoadOptions{});
  ASSERT_TRUE(pipe.ok());
  ParallelOptions o;
  o.sync_mode = "async";
  EXPECT_NE(GenerateParallel(**pipe, Params(), nullptr, o).status().message().find("unknown sync mode 'async'"),
            std::string::npos);
  o = ParallelOptions{};
  o.parallelism = "pipeline";
  EXPECT_NE(GenerateParallel(**pipe, Params(), nullptr, o).status().message().find("unknown parallelism"),
            std::string::npos);
  o = ParallelOptions{};
  o.warmup_steps = -1;
  EXPECT_FALSE(GenerateParallel(**pipe, Params(), nullptr, o).ok());
}

TEST_F(GenerateParallelTest, ImageTooSmallForTheGangIsAClearError) {
  GenerateParams p = Params();
  p.height = 16;  // 2 latent rows: fewer row units than ranks
  ParallelOptions o;
  o.split_cfg = false;
  auto r = RunGang(4, o, p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
}

TEST_F(GenerateParallelTest, CancellingOneRankStopsTheGang) {
  constexpr int kWorld = 2;
  channel::MemoryRendezvous rendezvous;
  std::vector<Status> statuses(kWorld);
  std::vector<std::thread> threads;
  ParallelOptions o;
  o.split_cfg = false;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      auto pipe = Pipeline::Load(dir_, pipeline::LoadOptions{});
      auto ch = channel::MakeChannel(channel::Backend::kLocal, r, kWorld, rendezvous);
      if (!pipe.ok() || !ch.ok()) return;
      auto progress = [r](int step, int) { return !(r == 1 && step == 2); };
      statuses[r] = GenerateParallel(**pipe, Params(), ch->get(), o, progress).status();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(statuses[1].code(), StatusCode::kCancelled) << statuses[1].ToString();
  EXPECT_FALSE(statuses[0].ok());
}

}  // namespace
}  // namespace distri::parallel
