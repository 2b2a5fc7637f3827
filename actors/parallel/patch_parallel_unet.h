// One UNet forward over a gang of ranks with synchronous patch parallelism (full_sync): the
// result equals the single-device UNet forward up to rounding (DisplacedPatchContext's
// synchronous exchanges, displaced_patch_context.h).
#pragma once

#include <ATen/ATen.h>

#include <torch/nn/module.h>

#include <functional>
#include <optional>

#include "actors/model/unet/unet_2d_condition.h"
#include "actors/parallel/patch_plan.h"
#include "runtime/channel/channel.h"
#include "runtime/common/status.h"

namespace distri::parallel {

// The plan for `unet` on a latent of height x width over `world_size` ranks (strip boundaries
// at multiples of 2^(number of downsamplers)).
Result<PatchPlan> PlanForUNet(const model::UNet2DConditionModelImpl& unet, int64_t height, int64_t width,
                              int world_size);

// Every rank of the gang calls this with its own `unet` (same weights; the context is attached
// to it for the duration of the call, so two ranks must not share one module) and the same
// full inputs. Returns the full noise prediction [B, C_out, H, W], identical on every rank.
// Errors: see RunPatchParallelForward; the channel is aborted on error.
Result<at::Tensor> PatchParallelUNetForward(model::UNet2DConditionModel& unet, channel::Channel& channel,
                                            const PatchPlan& plan, const at::Tensor& sample,
                                            const at::Tensor& timestep, const at::Tensor& encoder_hidden_states,
                                            const std::optional<model::UNetAddedConditions>& added = std::nullopt);

// One UNet-style forward, patch-parallel, on this rank: slices the rank's strip of `sample`
// (the full latent, identical on every rank), runs `forward(strip)` with a synchronous
// (full_sync) DisplacedPatchContext attached to `model` (detached again before returning) and
// all-gathers the strips into the full output [B, C_out, H, W], identical on every rank. Every
// rank of the gang calls it with the same plan and inputs. Errors: InvalidArgument (sample
// shape not the plan's, world size or rank mismatch), the channel's errors, Internal for an
// exception out of the model; on any error the channel is aborted.
Result<at::Tensor> RunPatchParallelForward(torch::nn::Module& model, channel::Channel& channel,
                                           const PatchPlan& plan, const at::Tensor& sample,
                                           const std::function<at::Tensor(const at::Tensor&)>& forward);

}  // namespace distri::parallel
