#include "actors/parallel/tensor_parallel_generate.h"

#include <chrono>
#include <optional>
#include <string>

#include "actors/common/torch_util.h"
#include "actors/parallel/parallel_decode.h"

#ifdef DISTRI_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace distri::parallel {
namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void SyncDevice(const c10::Device& device) {
#ifdef DISTRI_HAVE_CUDA
  if (device.is_cuda()) c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
#endif
}

}  // namespace

Result<pipeline::GenerateResult> GenerateTensorParallel(pipeline::Pipeline& pipe, pipeline::GenerateParams params,
                                                        channel::Channel* channel, const ParallelOptions& options,
                                                        const pipeline::ProgressFn& progress, ParallelStats* stats,
                                                        std::unique_ptr<TensorParallelUNetRunner>* keep,
                                                        const LatentCallback& on_latents) {
  DISTRI_RETURN_IF_ERROR(pipeline::ValidateParams(&params, pipe.default_size()));
  const int scale = pipe.vae_scale();
  if (params.height % scale != 0 || params.width % scale != 0) {
    return Status::InvalidArgument("height and width must be multiples of " + std::to_string(scale) +
                                   " for this model's VAE");
  }
  const int world = channel ? channel->world_size() : 1;
  const int rank = channel ? channel->rank() : 0;
  const c10::Device device = pipe.options().device;

  c10::InferenceMode inference;
  std::unique_ptr<TensorParallelUNetRunner> local;
  std::unique_ptr<TensorParallelUNetRunner>& runner = keep ? *keep : local;
  if (!runner || !runner->Serves(pipe.unet(), channel)) {
    runner.reset();  // detaches the old context first
    // A refusal here (sizes) is the same on every rank and comes before any collective: the
    // channel is left usable, so that every rank reports the refusal itself.
    DISTRI_ASSIGN_OR_RETURN(runner, TensorParallelUNetRunner::Create(pipe.unet(), channel, options.cuda_graphs));
  }
  ResetPeakMemory(device);
  pipeline::GenerateResult result;
  auto t0 = std::chrono::steady_clock::now();
  DISTRI_ASSIGN_OR_RETURN(pipeline::Conditioning cond, pipe.EncodePrompts(params));
  result.seconds_text = Since(t0);
  DISTRI_ASSIGN_OR_RETURN(auto sampler, pipe.MakeSampler(params));
  at::Tensor latents = pipe.InitialLatents(params, *sampler);
  DISTRI_RETURN_IF_ERROR(runner->SetConditioning(cond.prompt_embeds, cond.added));
#ifdef DISTRI_HAVE_CUDA
  // A CUDA graph is captured on a pool stream; start it after the work queued so far.
  std::optional<c10::cuda::CUDAStreamGuard> stream_guard;
  if (device.is_cuda()) {
    SyncDevice(device);
    stream_guard.emplace(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index()));
  }
#endif
  t0 = std::chrono::steady_clock::now();
  const int n = sampler->num_steps();
  auto cancel = [&](int step) {
    if (channel) channel->Abort("job cancelled on rank " + std::to_string(rank));
    return Status::Cancelled("cancelled at step " + std::to_string(step));
  };
  if (progress && !progress(0, n)) return cancel(0);
  for (int i = 0; i < n; ++i) {
    at::Tensor input = cond.guidance ? at::cat({latents, latents}, 0) : latents;
    input = sampler->ScaleModelInput(input, i);
    if (pipe.channels_last()) input = input.contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor t = sampler->timesteps()[i].to(device);
    DISTRI_ASSIGN_OR_RETURN(at::Tensor out, runner->Forward(input, t));
    if (cond.guidance) {
      auto halves = out.chunk(2, 0);
      out = halves[0] + params.guidance * (halves[1] - halves[0]);
    }
    DISTRI_ASSIGN_OR_RETURN(latents, sampler->Step(out.contiguous(), i, latents));
    if (on_latents.Due(i + 1, n, rank)) on_latents.fn(i + 1, latents);
    if (progress && !progress(i + 1, n)) return cancel(i + 1);
  }
  SyncDevice(device);
  result.seconds_denoise = Since(t0);
  result.latents = latents.to(at::kCPU, at::kFloat);
  if (stats) {
    stats->layout = GangLayout{1, world};  // one batch group of all the ranks (no CFG split)
    stats->stale_bytes = 0;
    stats->peak_denoise_bytes = PeakAllocatedBytes(device);
  }
  t0 = std::chrono::steady_clock::now();
  if (channel && world > 1 && options.parallel_vae) {
    DISTRI_ASSIGN_OR_RETURN(at::Tensor image,
                            PatchParallelDecode(pipe.vae(), *channel, latents, pipe.options().vae_decode_dtype));
    if (rank == 0) result.image = pipeline::ToRgb(image);
    result.seconds_decode = Since(t0);
  } else if (rank == 0) {
    DISTRI_ASSIGN_OR_RETURN(result.image, pipe.DecodeLatents(latents));
    result.seconds_decode = Since(t0);
  }
  return result;
}

}  // namespace distri::parallel
