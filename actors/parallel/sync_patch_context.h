// SyncPatchContext: the synchronous ("full_sync") layer context of displaced patch parallelism
// (docs/DISTRIFUSION.md). With it attached, the UNet forward of rank r on its strip computes
// exactly the rows [plan.rows(r)) of the single-device forward, up to rounding:
//
//   Conv2d, kernel > 1   halo rows: every rank all-gathers its top and bottom `padding` rows;
//                        rank r pads its strip with rank r-1's bottom rows and rank r+1's top
//                        rows (zeros at the image top and bottom) and convolves with no
//                        vertical padding. Works for stride 1 and for the stride-2
//                        downsamplers because strip starts are even at every level that is
//                        downsampled (PatchPlan). conv_in (site index 0 named "conv_in") slices
//                        its halo from the full latent instead (SetFullInput), with no exchange.
//   Conv2d, 1x1          local.
//   GroupNorm            global statistics: every rank all-gathers its strip height and, per
//                        (batch, group), its local mean and sum of squared deviations (M2);
//                        every rank combines them in rank order (Chan et al.'s pairwise
//                        formula, in double), so all ranks get bit-identical statistics and the
//                        variance has no E[x^2] - E[x]^2 cancellation. Biased variance and eps
//                        as torch.nn.GroupNorm.
//   Self-attention K/V   all-gather (AllGatherV: strips may be uneven) of every strip's K/V in
//                        rank order, which is image row order (tokens are row-major).
//
// Hooks for the later asynchronous (stale) modes, which keep this class's exchange layout:
//   - HaloExchange:   the async conv takes the neighbours' boundary rows from the previous
//                     step's all-gather instead of waiting for this one.
//   - GroupStats:     the per-rank (rows, mean, M2) packets are what corrected_async_gn /
//                     stale_gn need: stale global stats + (fresh own - stale own).
//   - GatherKeyValue: stale K/V of the other strips, fresh own rows spliced in.
// Each of those is one collective per site, issued in forward order; packing them into few
// large asynchronous all-gathers is the async path's job.
//
// Threading: one context per rank, called from the thread that runs that rank's forward.
// Errors inside a forward (a channel failure, a tensor that is not a strip of the plan) cannot
// be returned through the LayerContext interface: the context records the first one (status())
// and throws PatchParallelError; RunPatchParallelForward turns it into a Status and aborts the
// channel so that the other ranks do not wait for a collective that will never come.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>

#include "actors/model/blocks/layer_context.h"
#include "actors/parallel/patch_plan.h"
#include "runtime/channel/channel.h"
#include "runtime/common/status.h"

namespace distri::parallel {

// Thrown out of a forward by SyncPatchContext; carries the Status.
class PatchParallelError : public std::runtime_error {
 public:
  explicit PatchParallelError(Status status) : std::runtime_error(status.ToString()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

class SyncPatchContext : public model::LayerContext {
 public:
  // `channel` (not owned, must outlive the context) is this rank's channel of a gang of
  // plan.world_size() ranks; its rank is the strip this context serves.
  SyncPatchContext(channel::Channel& channel, PatchPlan plan);

  // The full latent (every rank has it) for conv_in's halo; [B, C, H, W] of the plan's size.
  // Without one, conv_in exchanges halos like any other convolution.
  void SetFullInput(at::Tensor latent) { full_input_ = std::move(latent); }

  at::Tensor Conv2d(const model::LayerSite& site, const model::Conv2dImpl& conv, const at::Tensor& x) override;
  at::Tensor GroupNorm(const model::LayerSite& site, const model::GroupNormImpl& norm, const at::Tensor& x) override;
  std::pair<at::Tensor, at::Tensor> SelfAttentionKeyValue(const model::LayerSite& site, at::Tensor k,
                                                          at::Tensor v) override;

  int rank() const { return rank_; }
  const PatchPlan& plan() const { return plan_; }
  // OK, or the first error of a forward.
  const Status& status() const { return status_; }

 private:
  // Returns x with `pad` halo rows above and below (neighbours' rows or zeros).
  at::Tensor HaloExchange(const model::LayerSite& site, const at::Tensor& x, int64_t pad);
  at::Tensor SliceFullInput(const model::LayerSite& site, const at::Tensor& x, int64_t pad);
  // Per (batch, group): global mean and biased variance, [B, G] double each.
  std::pair<at::Tensor, at::Tensor> GroupStats(const model::LayerSite& site, const at::Tensor& x, int64_t groups);
  at::Tensor GatherKeyValue(const model::LayerSite& site, const at::Tensor& kv);
  [[noreturn]] void Fail(Status status);

  channel::Channel& channel_;
  PatchPlan plan_;
  int rank_;
  at::Tensor full_input_;
  Status status_;
};

// One UNet-style forward, patch-parallel, on this rank: slices the rank's strip of `sample`
// (the full latent, identical on every rank), runs `forward(strip)` with a SyncPatchContext
// attached to `model` (detached again before returning) and all-gathers the strips into the
// full output [B, C_out, H, W], identical on every rank. Every rank of the gang calls it with
// the same plan and inputs. Errors: InvalidArgument (sample shape not the plan's, world size or
// rank mismatch), the channel's errors, Internal for an exception out of the model; on any error
// the channel is aborted.
Result<at::Tensor> RunPatchParallelForward(torch::nn::Module& model, channel::Channel& channel,
                                           const PatchPlan& plan, const at::Tensor& sample,
                                           const std::function<at::Tensor(const at::Tensor&)>& forward);

}  // namespace distri::parallel
