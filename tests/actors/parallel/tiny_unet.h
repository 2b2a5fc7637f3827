// Tiny random UNets, their inputs and the ranks of a gang in threads, shared by the parallel
// UNet tests (patch and tensor parallelism vs the single-device forward, CPU fp32).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "actors/model/unet/unet_2d_condition.h"
#include "runtime/channel/factory.h"
#include "runtime/channel/rendezvous.h"

namespace distri::parallel::testing {

// SDXL-shaped (text_time, linear projections, 4 heads wherever there is attention) with three
// levels: two downsamplers, row unit 4. Norm groups `groups` (4 splits by 2 and 4).
std::string TinyXlConfig(int groups = 4);

// SD1.5-shaped: 2 heads, 1x1 conv projections, attention at the first level (the largest K/V);
// one downsampler, row unit 2.
std::string TinySd15Config();

// The UNet of `config` (a diffusers unet/config.json) with the same random weights every time
// it is called, so each rank builds its own copy; `fused`: q/k/v projections fused, as LoadUNet
// does. A test failure on a bad config.
model::UNet2DConditionModel RandomUNet(const std::string& config, bool fused = false);

struct UNetInputs {
  at::Tensor sample, timestep, states;
  std::optional<model::UNetAddedConditions> added;
};

// Seeded inputs for a batch of [4, height, width] latents at timestep 321 with 5 text tokens of
// 12 channels; `text_time`: with SDXL's added conditions (for TinyXlConfig).
UNetInputs MakeInputs(bool text_time, int64_t batch, int64_t height, int64_t width);

// Runs rank(r) for every r in [0, world), each on its own thread, and waits for all of them.
void OnRankThreads(int world, const std::function<void(int r)>& rank);

// Rank `rank` of a gang of `world` over the local backend (ranks as threads sharing
// `rendezvous`), with an op timeout of 60 s.
Result<std::unique_ptr<channel::Channel>> LocalRank(int rank, int world, channel::MemoryRendezvous& rendezvous);

}  // namespace distri::parallel::testing
