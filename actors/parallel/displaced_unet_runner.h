// DisplacedUNetRunner: one job's UNet evaluations on one rank of a patch-parallel gang.
//
// Every rank of the gang holds the full latent (the sampler update runs identically on every
// rank) and calls Forward with the same full model input each step; the runner computes this
// rank's strip of its batch group (DisplacedPatchContext), then all-gathers every rank's strip
// so that each rank returns the full output. Steps < warmup_steps (and every step in full_sync)
// are synchronous; later ones are displaced (stale activations).
//
// CUDA graphs (CUDA device, options.cuda_graphs): each phase (synchronous, displaced) runs
// eagerly once, is then captured on the current stream (which must not be the legacy default
// stream: callers run the loop under a c10::cuda::CUDAStreamGuard of a pool stream) and
// replayed for the following steps of that phase, its collectives included. Inputs are copied
// into static buffers before a replay; the returned tensor is valid until the next Forward.
//
// Jobs: a runner serves any number of jobs of its size in turn (graphs are captured once and
// replayed by later jobs): SetConditioning starts a job, then Forward runs its steps 0, 1, ...
// The runner attaches its context to `unet` for its lifetime (detached in the destructor), so
// one UNet serves one runner at a time, and nothing else may run the UNet meanwhile.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <optional>

#include "actors/model/unet/unet_2d_condition.h"
#include "actors/parallel/displaced_patch_context.h"
#include "runtime/channel/channel.h"
#include "runtime/common/status.h"

namespace at::cuda {
struct CUDAGraph;
}

namespace distri::parallel {

struct RunnerOptions {
  DisplacedOptions context;
  int warmup_steps = 4;     // clamped to >= 1 for the modes that read stale activations
  bool cuda_graphs = true;  // ignored on CPU
  // The strips' memory format: channels-last where unset on CUDA (what the GPU kernels
  // want), contiguous on CPU; tests set it to run the channels-last exchanges on CPU.
  std::optional<bool> channels_last;
};

class DisplacedUNetRunner {
 public:
  // `channel` may be null only for a gang of one. latent_height/width: the latent's size.
  // `group_channel` (optional, not owned): a channel among the patch_ranks ranks of this rank's
  // batch group (rank = strip); with it the patch exchanges stay inside the group instead of
  // going to the whole gang (half the traffic with the CFG split).
  static Result<std::unique_ptr<DisplacedUNetRunner>> Create(model::UNet2DConditionModel unet,
                                                            channel::Channel* channel, GangLayout layout,
                                                            int64_t latent_height, int64_t latent_width,
                                                            RunnerOptions options,
                                                            channel::Channel* group_channel = nullptr);
  ~DisplacedUNetRunner();

  // Starts a job: the text conditioning of the full batch ([groups * b, ...], group g takes
  // rows [g*b, (g+1)*b)), the same on every rank. The first job's tensors are copied into
  // static buffers; later jobs overwrite them (and the cross-attention caches) in place.
  Status SetConditioning(const at::Tensor& encoder_hidden_states,
                         const std::optional<model::UNetAddedConditions>& added);
  // input [groups * b, C, H, W] (the same on every rank), timestep a 0-dim tensor. Returns
  // [groups * b, C_out, H, W], valid until the next Forward. Errors abort the channel.
  Result<at::Tensor> Forward(int step, const at::Tensor& input, const at::Tensor& timestep);

  const PatchPlan& plan() const { return plan_; }
  const GangLayout& layout() const { return layout_; }
  // Bytes of the stale-activation buffers (0 for a single strip).
  int64_t stale_bytes() const { return context_ ? context_->stale_bytes() : 0; }
  // The part of stale_bytes() in the channel's collective memory (outside LibTorch's allocator).
  int64_t collective_bytes() const { return context_ ? context_->collective_bytes() : 0; }
  // Chunks of the stale buffers: the stale all-gathers of a step.
  int64_t exchange_chunks() const { return context_ ? context_->num_chunks() : 0; }
  // Self-attentions that read their K/V in place so far (DisplacedOptions::kv_in_place).
  int64_t kv_in_place_reads() const { return context_ ? context_->kv_in_place_reads() : 0; }
  // Self-attention K/V assembled by the fused kernel so far (DisplacedOptions::fused_kv_assembly).
  int64_t kv_fused_assemblies() const { return context_ ? context_->kv_fused_assemblies() : 0; }
  // Convolutions run on their group norm's padded output so far (DisplacedOptions::
  // norm_into_padded_strip).
  int64_t padded_strip_convs() const { return context_ ? context_->padded_strip_convs() : 0; }
  // Convolutions run in the seam and the wide form so far (DisplacedOptions::strip_conv).
  int64_t seam_convs() const { return context_ ? context_->seam_convs() : 0; }
  int64_t wide_convs() const { return context_ ? context_->wide_convs() : 0; }
  // Chunks handed to the copy-engine exchange so far (DisplacedOptions::peer_exchange).
  int64_t peer_publishes() const { return context_ ? context_->peer_publishes() : 0; }
  // Nodes of the captured CUDA graph of a phase (0 synchronous, 1 displaced), by kind; all 0
  // before its capture or without graphs. Every node costs a launch gap on replay (~1-2 us on
  // an H100), so the counts say how much of a step's idle time is the graph's own structure.
  struct GraphNodes {
    int64_t total = 0, kernels = 0, memcpy = 0, memset = 0, other = 0;
  };
  GraphNodes graph_nodes(int phase) const;

 private:
  DisplacedUNetRunner(model::UNet2DConditionModel unet, channel::Channel* channel, GangLayout layout, PatchPlan plan,
                      RunnerOptions options, channel::Channel* group_channel);
  // One forward of this rank plus the output all-gather; throws (PatchParallelError, c10::Error).
  at::Tensor ForwardOnce(bool synchronous, const at::Tensor& input, const at::Tensor& timestep);
  at::Tensor GatherOutput(const at::Tensor& strip_out);

  model::UNet2DConditionModel unet_;
  channel::Channel* channel_;
  channel::Channel* group_channel_;  // optional
  GangLayout layout_;
  PatchPlan plan_;
  RunnerOptions options_;
  int rank_ = 0, group_ = 0, strip_ = 0;
  std::shared_ptr<DisplacedPatchContext> context_;  // null when the group has one strip
  // This group's share of the conditioning, kept stable (the cross-attention K/V cache is
  // keyed by the tensor).
  at::Tensor ehs_;
  std::optional<model::UNetAddedConditions> added_;
  // CUDA graphs per phase (0 synchronous, 1 displaced).
  struct Phase {
    int eager_runs = 0;
    std::shared_ptr<at::cuda::CUDAGraph> graph;  // shared_ptr: the type is complete only in CUDA builds
    at::Tensor input, timestep, output;
  };
  Phase phases_[2];
};

}  // namespace distri::parallel
