#include "actors/parallel/parallel_generate.h"

#include <chrono>
#include <optional>

#include "actors/common/step_pacer.h"
#include "actors/common/torch_util.h"
#include "actors/parallel/parallel_decode.h"
#include "actors/parallel/tensor_parallel.h"

#ifdef DISTRI_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace distri::parallel {
namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Waits for the device's work (timings, and the latents leaving the loop's stream).
void SyncDevice(const c10::Device& device) {
#ifdef DISTRI_HAVE_CUDA
  if (device.is_cuda()) c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
#endif
}

}  // namespace

Result<pipeline::GenerateResult> GenerateParallel(pipeline::Pipeline& pipe, pipeline::GenerateParams params,
                                                  channel::Channel* channel, const ParallelOptions& options,
                                                  const pipeline::ProgressFn& progress, ParallelStats* stats,
                                                  const LatentCallback& on_latents) {
  ParallelGenerator generator(pipe, channel, options);
  return generator.Generate(std::move(params), progress, stats, on_latents);
}

ParallelGenerator::ParallelGenerator(pipeline::Pipeline& pipe, channel::Channel* channel, ParallelOptions options)
    : pipe_(pipe), channel_(channel), options_(std::move(options)) {}

ParallelGenerator::~ParallelGenerator() = default;

Result<pipeline::GenerateResult> ParallelGenerator::Generate(pipeline::GenerateParams params,
                                                             const pipeline::ProgressFn& progress,
                                                             ParallelStats* stats, const LatentCallback& on_latents) {
  pipeline::Pipeline& pipe = pipe_;
  channel::Channel* channel = channel_;
  const ParallelOptions& options = options_;
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

  // Tensor parallelism (tensor_parallel.h): every rank runs the full batch and the full latent
  // through a UNet split over the gang (split_cfg, sync_mode and warmup_steps do not apply);
  // the rest of the job is the patch path's. Its runner is kept between jobs like the patch
  // runner. A refusal here (sizes) is the same on every rank and comes before any collective,
  // so every rank reports it itself.
  const bool tensor = options.parallelism == "tensor";
  RunnerOptions runner_options;
  if (tensor) {
    if (!tp_runner_ || !tp_runner_->Serves(pipe.unet(), channel)) {
      tp_runner_.reset();  // detaches the old context first
      DISTRI_ASSIGN_OR_RETURN(tp_runner_, TensorParallelUNetRunner::Create(pipe.unet(), channel, options.cuda_graphs));
    }
  } else {
    DISTRI_ASSIGN_OR_RETURN(runner_options.context.mode, ParseSyncMode(options.sync_mode));
    if (options.parallelism == "naive_patch") {
      runner_options.context.naive = true;
    } else if (options.parallelism != "patch") {
      return Status::InvalidArgument("unknown parallelism '" + options.parallelism +
                                     "' (expected patch, naive_patch or tensor)");
    }
    if (options.warmup_steps < 0) {
      return Status::InvalidArgument("warmup_steps must be >= 0, got " + std::to_string(options.warmup_steps));
    }
    if (options.comm_chunk_bytes < 1) return Status::InvalidArgument("comm_chunk_bytes must be positive");
    runner_options.warmup_steps = options.warmup_steps;
    runner_options.cuda_graphs = options.cuda_graphs;
    runner_options.context.chunk_bytes = options.comm_chunk_bytes;
    runner_options.context.collective_memory = options.collective_memory;
    runner_options.context.kv_in_place = options.kv_in_place;
    runner_options.context.fused_kv_assembly = options.fused_kv_assembly;
    runner_options.context.norm_into_padded_strip = options.norm_into_padded_strip;
    runner_options.context.strip_conv = options.strip_conv;
    runner_options.context.peer_exchange = options.peer_exchange;
  }

  ResetPeakMemory(device);
  pipeline::GenerateResult result;
  auto t0 = std::chrono::steady_clock::now();
  DISTRI_ASSIGN_OR_RETURN(pipeline::Conditioning cond, pipe.EncodePrompts(params));
  result.seconds_text = Since(t0);
  const auto prepare_start = std::chrono::steady_clock::now();
  DISTRI_ASSIGN_OR_RETURN(auto sampler, pipe.MakeSampler(params));
  at::Tensor latents = pipe.InitialLatents(params, *sampler);

  // One batch group of all the ranks for tensor parallelism (no CFG split).
  GangLayout layout{1, world};
  std::function<Result<at::Tensor>(int, const at::Tensor&, const at::Tensor&)> forward;
  if (tensor) {
    DISTRI_RETURN_IF_ERROR(tp_runner_->SetConditioning(cond.prompt_embeds, cond.added));
    forward = [this](int, const at::Tensor& input, const at::Tensor& t) { return tp_runner_->Forward(input, t); };
  } else {
    layout.groups = (cond.guidance && options.split_cfg && world % 2 == 0) ? 2 : 1;
    layout.patch_ranks = world / layout.groups;
    const int64_t latent_h = params.height / scale, latent_w = params.width / scale;
    if (!runner_ || runner_height_ != latent_h || runner_width_ != latent_w || runner_layout_.groups != layout.groups) {
      runner_.reset();  // detaches the old context first
      if (layout.groups > 1 && layout.patch_ranks > 1 && !group_channel_) {
        const int group = layout.group_of(rank), strip = layout.strip_of(rank);
        if (options.group_channel) {
          DISTRI_ASSIGN_OR_RETURN(group_channel_, options.group_channel(group, strip, layout.patch_ranks));
        } else if (options.make_group_channel) {
          DISTRI_ASSIGN_OR_RETURN(owned_group_channel_, options.make_group_channel(group, strip, layout.patch_ranks));
          group_channel_ = owned_group_channel_.get();
        }
      }
      channel::Channel* group_channel = layout.groups > 1 ? group_channel_ : nullptr;
      DISTRI_ASSIGN_OR_RETURN(runner_, DisplacedUNetRunner::Create(pipe.unet(), channel, layout, latent_h, latent_w,
                                                                   runner_options, group_channel));
      runner_layout_ = layout;
      runner_height_ = latent_h;
      runner_width_ = latent_w;
    }
    DISTRI_RETURN_IF_ERROR(runner_->SetConditioning(cond.prompt_embeds, cond.added));
    forward = [this](int i, const at::Tensor& input, const at::Tensor& t) { return runner_->Forward(i, input, t); };
  }
#ifdef DISTRI_HAVE_CUDA
  // CUDA graphs are captured on a pool stream; start it after the work queued so far.
  std::optional<c10::cuda::CUDAStreamGuard> stream_guard;
  if (device.is_cuda()) {
    SyncDevice(device);
    stream_guard.emplace(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index()));
  }
#endif
  t0 = std::chrono::steady_clock::now();
  result.seconds_prepare = std::chrono::duration<double>(t0 - prepare_start).count();
  const int n = sampler->num_steps();
  auto cancel = [&](int step) {
    if (channel) channel->Abort("job cancelled on rank " + std::to_string(rank));
    if (group_channel_) group_channel_->Abort("job cancelled on rank " + std::to_string(rank));
    return Status::Cancelled("cancelled at step " + std::to_string(step));
  };
  // A device failure seen while pacing: the peers must not wait for this rank's collectives.
  auto fail = [&](const Status& status) {
    if (channel) channel->Abort(status.ToString());
    if (group_channel_) group_channel_->Abort(status.ToString());
    return status;
  };
  // The timesteps go to the device once: a per-step copy from host memory would block the host
  // until the device is idle, and the device would wait for the next step's launch.
  const at::Tensor timesteps = sampler->timesteps().to(device);
  StepPacer pacer(device);  // one step queued ahead of the running one
  int reported = 0;         // steps reported done through `progress`
  if (progress && !progress(0, n)) return cancel(0);
  for (int i = 0; i < n; ++i) {
    at::Tensor input = cond.guidance ? at::cat({latents, latents}, 0) : latents;
    input = sampler->ScaleModelInput(input, i);
    if (pipe.channels_last()) input = input.contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor t = timesteps[i];
    DISTRI_ASSIGN_OR_RETURN(at::Tensor out, forward(i, input, t));
    if (cond.guidance) out = pipeline::CombineGuidance(out, params.guidance, params.guidance_rescale);
    DISTRI_ASSIGN_OR_RETURN(latents, sampler->Step(out.contiguous(), i, latents));
    if (on_latents.Due(i + 1, n, rank)) on_latents.fn(i + 1, latents);
    Result<int> done = pacer.Queued();
    if (!done.ok()) return fail(done.status());
    if (progress && *done > reported && !progress(reported = *done, n)) return cancel(reported);
  }
  if (Result<int> done = pacer.Finish(); !done.ok()) return fail(done.status());
  if (progress && n > reported && !progress(n, n)) return cancel(n);
  SyncDevice(device);
  result.seconds_denoise = Since(t0);
  t0 = std::chrono::steady_clock::now();
  result.latents = latents.to(at::kCPU, at::kFloat);
  result.seconds_finish = Since(t0);
  if (stats) {
    stats->layout = layout;
    stats->stale_bytes = tensor ? 0 : runner_->stale_bytes();
    for (int phase = 0; phase < 2 && !tensor; ++phase) stats->graph_nodes[phase] = runner_->graph_nodes(phase);
    stats->collective_bytes = tensor ? 0 : runner_->collective_bytes();
    stats->exchange_chunks = tensor ? 0 : runner_->exchange_chunks();
    stats->peak_denoise_bytes = PeakAllocatedBytes(device) + stats->collective_bytes;
  }
  t0 = std::chrono::steady_clock::now();
  if (channel && world > 1 && options.parallel_vae) {
    // One image after the other (num_images > 1), every rank taking part in each.
    for (int64_t i = 0; i < latents.size(0); ++i) {
      DISTRI_ASSIGN_OR_RETURN(at::Tensor image, PatchParallelDecode(pipe.vae(), *channel, latents.narrow(0, i, 1),
                                                                    pipe.options().vae_decode_dtype));
      if (rank == 0) result.AddImage(pipeline::ToRgb(image));
    }
    result.seconds_decode = Since(t0);
  } else if (rank == 0) {
    DISTRI_RETURN_IF_ERROR(pipe.DecodeEach(latents, &result));
    result.seconds_decode = Since(t0);
  }
  return result;
}

}  // namespace distri::parallel
