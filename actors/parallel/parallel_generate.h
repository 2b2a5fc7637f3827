// GenerateParallel: one image rendered by a gang of ranks (docs/DISTRIFUSION.md,
// docs/runtime-design.md). Every rank holds the same pipeline (same weights), calls this with
// the same params and options, and keeps the full latent: the text encoders, the seeded noise
// and the sampler update run identically on every rank; only the UNet is split (patch
// parallelism, DisplacedUNetRunner; or, with parallelism "tensor", its heads and channels,
// TensorParallelUNetRunner, every rank running the whole batch). The VAE decode is split across the gang too
// (ParallelOptions::parallel_vae) or runs on rank 0; rank 0 returns the image, the other ranks
// the latents only.
//
// Layout: with classifier-free guidance, split_cfg and an even gang, the unconditional half of
// the batch runs on ranks [0, N/2) and the conditional half on [N/2, N), each half split into
// N/2 strips (2 GPUs = pure CFG split); otherwise all N ranks split the whole batch.
//
// GPU: the denoising loop runs on a pool stream of the current device (CUDA graphs need a
// non-default stream); the call returns after that stream has finished.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "actors/parallel/displaced_unet_runner.h"
#include "actors/pipeline/pipeline.h"
#include "runtime/channel/channel.h"
#include "runtime/common/status.h"

namespace distri::parallel {

struct ParallelOptions {
  std::string parallelism = "patch";             // patch | naive_patch | tensor
  std::string sync_mode = "corrected_async_gn";  // see displaced_patch_context.h
  int warmup_steps = 4;
  bool split_cfg = true;    // CFG halves on the two halves of an even gang
  bool cuda_graphs = true;  // CUDA devices only
  int64_t comm_chunk_bytes = int64_t{32} << 20;
  // Stale buffers in the exchanging channel's collective memory (DisplacedOptions::
  // collective_memory: one NCCL symmetric window; NCCL then uses its symmetric-memory
  // all-gather kernels). 4x H200, same machine, 1024 / 2048 px on 4 GPUs: -1.0% / -1.4%
  // (docs/perf/parallel-sdxl.md, seventh session). Channels without such memory fall back
  // to ordinary buffers. The copy-engine variant (a group channel with nccl_zero_sm) is not
  // used: it passes the 2-GPU runner test but failed with a CUDA error in 4-GPU gangs.
  bool collective_memory = true;
  // Self-attention K/V read in place from per-layer exchange chunks (DisplacedOptions::
  // kv_in_place): no K/V concatenation a layer, one all-gather per self-attention. Off: slower
  // at 1024 px on 4 H200s (0.82 s vs 0.78 s), equal at 2048 px (docs/perf/parallel-sdxl.md).
  bool kv_in_place = false;
  // One kernel assembles each displaced self-attention's K/V (DisplacedOptions::
  // fused_kv_assembly; same bits). Off only to compare.
  bool fused_kv_assembly = true;
  // Group norm + SiLU outputs written into padded strips that the next convolution fills with
  // its halo (DisplacedOptions::norm_into_padded_strip; same bits). Off only to compare.
  bool norm_into_padded_strip = true;
  // How 3x3 convolutions run over strips with halo rows (DisplacedOptions::strip_conv): one
  // convolution over halo + strip by default (the same bits every run); kAuto for the fastest
  // form, timed per shape on the GPU.
  model::StripConvForm strip_conv = model::StripConvForm::kHalo;
  // Experimental (DisplacedOptions::peer_exchange): the stale chunks over the copy engines
  // between this process's GPUs instead of NCCL all-gathers, in captured CUDA graphs only. Not
  // yet shown to work (peer_exchange.h, "Status"); not offered by `distri generate`.
  bool peer_exchange = false;
  // Decode the VAE split across the gang (parallel_decode.h; exact) instead of on rank 0 alone.
  bool parallel_vae = true;
  // Optional: makes this rank's channel among the `size` ranks of its CFG group (`rank` = its
  // strip), e.g. MakeChannel over the gang's rendezvous with a per-group prefix; the generator
  // owns it. Used when the CFG halves are split; without it (and without group_channel) the
  // patch exchanges go over the whole gang.
  std::function<Result<std::unique_ptr<channel::Channel>>(int group, int rank, int size)> make_group_channel;
  // Optional, the borrowed form (used instead of make_group_channel when set): returns a group
  // channel the caller owns and keeps at least as long as the generator (the actor host keeps
  // it with the gang's channels across jobs, worker::GangChannels::Group).
  std::function<Result<channel::Channel*>(int group, int rank, int size)> group_channel;
};

// Optional look at the latent during the loop (the denoise actor's previews). `fn(step,
// latents)` is called on rank 0 only, after step `step` for step = every, 2 * every, ... below
// the last step (never after it), before the progress callback of that step, with the loop's
// latents: on the device, [batch, C, H/8, W/8], the loop's stream current. `fn` must not modify
// them; whatever it reads back to the host syncs that stream (costs that step a sync).
struct LatentCallback {
  int every = 0;  // 0 = never
  std::function<void(int step, const at::Tensor& latents)> fn;
  // True when `fn` is due after `step` of `total` on `rank`.
  bool Due(int step, int total, int rank) const {
    return every > 0 && fn && rank == 0 && step < total && step % every == 0;
  }
};

struct ParallelStats {
  GangLayout layout;
  int64_t stale_bytes = 0;  // this rank's stale-activation buffers
  int64_t collective_bytes = 0;  // the part of them outside LibTorch (collective memory, peer block)
  int64_t exchange_chunks = 0;   // stale all-gathers a step (one per chunk of the stale buffers)
  // Peak bytes LibTorch allocated on this rank's device from the job's start to the end of
  // the denoising loop (before the VAE decode; CUDA only, else 0), plus the stale buffers held
  // in collective memory (outside LibTorch's allocator).
  int64_t peak_denoise_bytes = 0;
  // Nodes of the patch runner's captured graphs (synchronous, displaced phase); zeros for
  // tensor parallelism, eager runs and CPU devices.
  DisplacedUNetRunner::GraphNodes graph_nodes[2];
};

// Renders jobs one after another on one rank of a gang, keeping the UNet runner (its stale
// buffers and CUDA graphs) between jobs of the same size and layout: the first job of a size
// captures the graphs, later ones replay them. While it exists, run `pipe` only through it
// (its UNet carries the runner's layer context). Not thread-safe; one per rank.
class TensorParallelUNetRunner;  // tensor_parallel.h

class ParallelGenerator {
 public:
  // `channel` null = a gang of one; else not owned, outlives the generator. After an error the
  // channel is aborted: make a new channel and generator.
  // (Out of line: tp_runner_'s type is complete only in the .cc.)
  ParallelGenerator(pipeline::Pipeline& pipe, channel::Channel* channel, ParallelOptions options);
  ~ParallelGenerator();
  Result<pipeline::GenerateResult> Generate(pipeline::GenerateParams params,
                                            const pipeline::ProgressFn& progress = nullptr,
                                            ParallelStats* stats = nullptr,
                                            const LatentCallback& on_latents = {});

 private:
  pipeline::Pipeline& pipe_;
  channel::Channel* channel_;
  ParallelOptions options_;
  std::unique_ptr<channel::Channel> owned_group_channel_;  // from make_group_channel
  channel::Channel* group_channel_ = nullptr;              // owned_ or borrowed; before runner_
  std::unique_ptr<DisplacedUNetRunner> runner_;
  std::unique_ptr<TensorParallelUNetRunner> tp_runner_;  // parallelism "tensor" only
  GangLayout runner_layout_;
  int64_t runner_height_ = 0, runner_width_ = 0;
};

// One job with a fresh ParallelGenerator.
// `channel` null = a gang of one (then graphs and everything else still apply). Errors:
// InvalidArgument (params, options, an image too small for the gang), the channel's errors,
// Cancelled when `progress` returns false (the channel is aborted so that peers stop too).
Result<pipeline::GenerateResult> GenerateParallel(pipeline::Pipeline& pipe, pipeline::GenerateParams params,
                                                  channel::Channel* channel, const ParallelOptions& options,
                                                  const pipeline::ProgressFn& progress = nullptr,
                                                  ParallelStats* stats = nullptr,
                                                  const LatentCallback& on_latents = {});

// The form the denoise actor uses (docs/runtime-design.md).
inline Result<pipeline::GenerateResult> GenerateParallel(pipeline::Pipeline& pipe, pipeline::GenerateParams params,
                                                         channel::Channel& channel, const ParallelOptions& options,
                                                         const pipeline::ProgressFn& progress = nullptr) {
  return GenerateParallel(pipe, std::move(params), &channel, options, progress);
}

}  // namespace distri::parallel
