#include "actors/worker/denoise_executor.h"

#include <chrono>

#include "actors/common/torch_util.h"
#include "actors/parallel/parallel_generate.h"
#include "actors/pipeline/image_output.h"
#include "actors/worker/latent_preview.h"
#include "runtime/common/logging.h"
#include "runtime/common/png.h"

namespace distri::worker {

Result<pipeline::GenerateParams> ToGenerateParams(const wire::JobSpec& job) {
  if (!job.seed.has_value()) return Status::InvalidArgument("AssignTask.job.seed: missing (the head always sets it)");
  pipeline::GenerateParams p;
  p.prompt = job.prompt;
  p.negative_prompt = job.negative_prompt;
  p.width = static_cast<int>(job.width);
  p.height = static_cast<int>(job.height);
  p.steps = static_cast<int>(job.steps);
  p.guidance = job.guidance;
  p.guidance_rescale = job.guidance_rescale;
  p.seed = *job.seed;
  p.sampler = job.sampler.empty() ? "default" : job.sampler;
  return p;
}

parallel::ParallelOptions ToParallelOptions(const wire::JobSpec& job, const parallel::ParallelOptions& defaults) {
  parallel::ParallelOptions o = defaults;
  if (!job.sync_mode.empty()) o.sync_mode = job.sync_mode;
  if (job.warmup_steps) o.warmup_steps = static_cast<int>(*job.warmup_steps);
  return o;
}

namespace {

// The options a kept runner depends on (the group channel callbacks are set per generator).
bool SameRunnerOptions(const parallel::ParallelOptions& a, const parallel::ParallelOptions& b) {
  return a.parallelism == b.parallelism && a.sync_mode == b.sync_mode && a.warmup_steps == b.warmup_steps &&
         a.split_cfg == b.split_cfg && a.cuda_graphs == b.cuda_graphs && a.comm_chunk_bytes == b.comm_chunk_bytes;
}

}  // namespace

parallel::ParallelGenerator& DenoiseExecutor::SoloGenerator(const parallel::ParallelOptions& options) {
  gang_.reset();  // one generator at a time
  if (!solo_ || !SameRunnerOptions(solo_options_, options)) {
    solo_.reset();  // detaches its runner from the UNet before the new one attaches
    solo_ = std::make_unique<parallel::ParallelGenerator>(*pipe_, nullptr, options);
    solo_options_ = options;
    ++solo_built_;
    DISTRI_LOG(INFO) << "new generator for gangs of one (sync mode " << options.sync_mode << ", " << options.warmup_steps
                     << " warm-up steps); later jobs of the same size reuse its runner";
  }
  return *solo_;
}

parallel::ParallelGenerator& DenoiseExecutor::GangGenerator(GangChannels& gang,
                                                           const parallel::ParallelOptions& options) {
  solo_.reset();  // one generator at a time
  if (!gang_ || gang_channel_ != gang.gang() || !SameRunnerOptions(gang_options_, options)) {
    gang_.reset();
    parallel::ParallelOptions o = options;
    // The CFG group channels are the host's, kept with the gang channel (made once per gang).
    o.make_group_channel = nullptr;
    GangChannels* channels = &gang;  // outlives the generator: the host calls ReleaseGang first
    o.group_channel = [channels](int group, int rank, int size) { return channels->Group(group, rank, size); };
    gang_ = std::make_unique<parallel::ParallelGenerator>(*pipe_, gang.gang(), std::move(o));
    gang_channel_ = gang.gang();
    gang_options_ = options;
    ++gang_built_;
    DISTRI_LOG(INFO) << "new generator for this gang (" << gang.gang()->world_size() << " ranks, sync mode "
                     << options.sync_mode << ", " << options.warmup_steps
                     << " warm-up steps); later jobs on the same kept gang reuse its runner";
  }
  return *gang_;
}

void DenoiseExecutor::ReleaseGang() {
  c10::DeviceGuard device_guard(pipe_->options().device);  // its runner frees device memory
  gang_.reset();
  gang_channel_ = nullptr;
}

Result<std::unique_ptr<DenoiseExecutor>> DenoiseExecutor::Load(const DenoiseOptions& options) {
  if (options.model_dir.empty()) return Status::InvalidArgument("--model: the model directory is required");
  // auto: CUDA_VISIBLE_DEVICES (set by the node agent) leaves this process one GPU, cuda:0.
  DISTRI_ASSIGN_OR_RETURN(c10::Device device, ParseDevice(options.device));
  const std::string dtype_name = options.dtype == "auto" ? (device.is_cuda() ? "fp16" : "fp32") : options.dtype;
  DISTRI_ASSIGN_OR_RETURN(at::ScalarType dtype, ParseDtype(dtype_name));
  pipeline::LoadOptions lo;
  lo.device = device;
  lo.dtype = dtype;
  lo.variant = options.variant;
  const auto t0 = std::chrono::steady_clock::now();
  auto pipe = pipeline::Pipeline::Load(options.model_dir, lo);
  if (!pipe.ok()) return pipe.status().WithContext("loading " + options.model_dir);
  DISTRI_LOG(INFO) << "loaded " << options.model_dir << " on " << device.str() << " (" << dtype_name << ") in "
                   << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s";
  return std::unique_ptr<DenoiseExecutor>(new DenoiseExecutor(options, std::move(*pipe)));
}

std::string DenoiseExecutor::device() const { return pipe_->options().device.str(); }

namespace {
int64_t Ms(double seconds) { return static_cast<int64_t>(seconds * 1000.0 + 0.5); }
}  // namespace

Result<TaskOutput> DenoiseExecutor::Run(const wire::AssignTask& task, GangChannels* gang,
                                        const ProgressFn& progress, const CancelFn& cancelled) {
  if (task.job.output_format != wire::OutputFormat::kPng) {
    return Status::Unimplemented("output format " + std::string(wire::OutputFormatName(task.job.output_format)) +
                                 ": the denoise actor writes PNG only");
  }
  const auto run_start = std::chrono::steady_clock::now();
  DISTRI_ASSIGN_OR_RETURN(pipeline::GenerateParams params, ToGenerateParams(task.job));
  // Rank 0's latent previews (JobSpec.preview_every): the PNG of a due step waits here for
  // that step's progress report, which carries it to the host.
  std::string preview;
  parallel::LatentCallback on_latents;
  if (task.rank == 0 && task.job.preview_every > 0) {
    on_latents.every = static_cast<int>(task.job.preview_every);
    const LatentFamily family = pipe_->is_xl() ? LatentFamily::kSdxl : LatentFamily::kSd;
    on_latents.fn = [&preview, family, warned = false](int step, const at::Tensor& latents) mutable {
      Result<std::string> png = LatentPreviewPng(latents, family);
      if (png.ok()) {
        preview = std::move(*png);
      } else if (!warned) {  // a preview is best effort: the job goes on without it
        warned = true;
        DISTRI_LOG(WARNING) << "no latent previews for this job: " << png.status().ToString();
      }
    };
  }
  // The pipeline's callback: report the step, and go on unless the task was cancelled (a
  // false return makes GenerateParallel abort the channel, so the peers stop too).
  pipeline::ProgressFn on_step = [&](int step, int total) {
    if (progress) progress(step, total, preview);
    preview.clear();
    return !(cancelled && cancelled());
  };
  // The task thread is not the thread that loaded the model: select its device here.
  c10::DeviceGuard device_guard(pipe_->options().device);
  // Every rank count goes through actors/parallel, as `distri generate` does (no channel is a
  // gang of one; a CFG-split gang of >= 4 exchanges patches over its group channel, as
  // `distri generate`'s make_group_channel does), so both give the same bytes.
  const parallel::ParallelOptions popts = ToParallelOptions(task.job, options_.parallel);
  Result<pipeline::GenerateResult> generated = Status::Internal("not run");
  const auto generate_start = std::chrono::steady_clock::now();
  // Warm: the kept generator replays its runner for jobs of the same size.
  if (gang == nullptr) {
    generated = SoloGenerator(popts).Generate(params, on_step, nullptr, on_latents);
  } else {
    generated = GangGenerator(*gang, popts).Generate(params, on_step, nullptr, on_latents);
  }
  if (!generated.ok()) {
    // After a failure or a cancel mid-loop the runner's state is not trusted: start afresh.
    solo_.reset();
    gang_.reset();
  }
  const double generate_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - generate_start).count();
  DISTRI_ASSIGN_OR_RETURN(pipeline::GenerateResult result, std::move(generated));
  TaskOutput out;
  out.denoise_ms = result.seconds_denoise * 1000.0;
  double png_ms = 0;
  if (task.rank == 0) {  // only rank 0 decodes and carries the image
    const auto t0 = std::chrono::steady_clock::now();
    out.format = wire::OutputFormat::kPng;
    out.width = static_cast<uint32_t>(result.image.width);
    out.height = static_cast<uint32_t>(result.image.height);
    DISTRI_ASSIGN_OR_RETURN(out.image, pipeline::EncodeImagePng(result.image, params, options_.model_dir));
    png_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    out.decode_ms = result.seconds_decode * 1000.0 + png_ms;
  }
  // Where a task's time goes, for comparing an actor with `distri generate --json` (the
  // cluster's overhead): the rest is parameter mapping, sampler and latents set-up, the
  // runner's conditioning and the copies around the loop.
  const double total_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - run_start).count();
  DISTRI_LOG(INFO) << "job " << task.job_id.Short() << " rank " << task.rank << ": text " << Ms(result.seconds_text)
                   << " ms, prepare " << Ms(result.seconds_prepare) << " ms, denoise " << Ms(result.seconds_denoise)
                   << " ms, finish " << Ms(result.seconds_finish) << " ms, decode " << Ms(result.seconds_decode)
                   << " ms, generate " << static_cast<int64_t>(generate_ms) << " ms, png "
                   << static_cast<int64_t>(png_ms) << " ms, task " << static_cast<int64_t>(total_ms) << " ms";
  return out;
}

}  // namespace distri::worker
