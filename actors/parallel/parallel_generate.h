// GenerateParallel: one image rendered by a gang of ranks (docs/DISTRIFUSION.md,
// docs/runtime-design.md). Every rank holds the same pipeline (same weights), calls this with
// the same params and options, and keeps the full latent: the text encoders, the seeded noise
// and the sampler update run identically on every rank; only the UNet is split (patch
// parallelism, DisplacedUNetRunner). Rank 0 decodes the image; the other ranks return the
// latents only.
//
// Layout: with classifier-free guidance, split_cfg and an even gang, the unconditional half of
// the batch runs on ranks [0, N/2) and the conditional half on [N/2, N), each half split into
// N/2 strips (2 GPUs = pure CFG split); otherwise all N ranks split the whole batch.
//
// GPU: the denoising loop runs on a pool stream of the current device (CUDA graphs need a
// non-default stream); the call returns after that stream has finished.
#pragma once

#include <string>

#include "actors/parallel/displaced_unet_runner.h"
#include "actors/pipeline/pipeline.h"
#include "runtime/channel/channel.h"
#include "runtime/common/status.h"

namespace distri::parallel {

struct ParallelOptions {
  std::string parallelism = "patch";             // patch | naive_patch
  std::string sync_mode = "corrected_async_gn";  // see displaced_patch_context.h
  int warmup_steps = 4;
  bool split_cfg = true;    // CFG halves on the two halves of an even gang
  bool cuda_graphs = true;  // CUDA devices only
  int64_t comm_chunk_bytes = int64_t{32} << 20;
};

struct ParallelStats {
  GangLayout layout;
  int64_t stale_bytes = 0;  // this rank's stale-activation buffers
};

// `channel` null = a gang of one (then graphs and everything else still apply). Errors:
// InvalidArgument (params, options, an image too small for the gang), the channel's errors,
// Cancelled when `progress` returns false (the channel is aborted so that peers stop too).
Result<pipeline::GenerateResult> GenerateParallel(pipeline::Pipeline& pipe, pipeline::GenerateParams params,
                                                  channel::Channel* channel, const ParallelOptions& options,
                                                  const pipeline::ProgressFn& progress = nullptr,
                                                  ParallelStats* stats = nullptr);

// The form the denoise actor uses (docs/runtime-design.md).
inline Result<pipeline::GenerateResult> GenerateParallel(pipeline::Pipeline& pipe, pipeline::GenerateParams params,
                                                         channel::Channel& channel, const ParallelOptions& options,
                                                         const pipeline::ProgressFn& progress = nullptr) {
  return GenerateParallel(pipe, std::move(params), &channel, options, progress);
}

}  // namespace distri::parallel
