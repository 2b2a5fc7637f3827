// GenerateTensorParallel: GenerateParallel's path for ParallelOptions::parallelism == "tensor"
// (tensor_parallel.h has the design). Every rank runs the same loop on the full latent and the
// full batch (both CFG halves: split_cfg, sync_mode and warmup_steps do not apply); the UNet
// runs split over the gang (TensorParallelUNetRunner). The VAE decode is split across the gang
// (options.parallel_vae, parallel_decode.h) or runs on rank 0, as with patch parallelism; rank 0
// returns the image, the other ranks the latents only. GPU: the loop runs on a pool stream of the
// current device and the call returns after it has finished.
#pragma once

#include <memory>

#include "actors/parallel/parallel_generate.h"
#include "actors/parallel/tensor_parallel.h"

namespace distri::parallel {

// `channel` null = a gang of one. `keep` (optional): where a caller that renders job after job
// keeps the runner (its static buffers and CUDA graph) between jobs; a runner made for another
// UNet or channel there is replaced. Without it every job makes (and captures) its own.
// Errors as GenerateParallel's; a gang that does not divide a layer's heads or inner size gives
// InvalidArgument on every rank before any collective (the channel is not aborted for it).
Result<pipeline::GenerateResult> GenerateTensorParallel(pipeline::Pipeline& pipe, pipeline::GenerateParams params,
                                                        channel::Channel* channel, const ParallelOptions& options,
                                                        const pipeline::ProgressFn& progress = nullptr,
                                                        ParallelStats* stats = nullptr,
                                                        std::unique_ptr<TensorParallelUNetRunner>* keep = nullptr,
                                                        const LatentCallback& on_latents = {});

}  // namespace distri::parallel
