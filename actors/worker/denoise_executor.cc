#include "actors/worker/denoise_executor.h"

#include <chrono>

#include "actors/common/torch_util.h"
#include "actors/parallel/parallel_generate.h"
#include "actors/pipeline/image_output.h"
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
  p.seed = *job.seed;
  p.sampler = job.sampler.empty() ? "default" : job.sampler;
  return p;
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

Result<TaskOutput> DenoiseExecutor::Run(const wire::AssignTask& task, channel::Channel* channel,
                                        const ProgressFn& progress, const CancelFn& cancelled) {
  if (task.job.output_format != wire::OutputFormat::kPng) {
    return Status::Unimplemented("output format " + std::string(wire::OutputFormatName(task.job.output_format)) +
                                 ": the denoise actor writes PNG only");
  }
  DISTRI_ASSIGN_OR_RETURN(pipeline::GenerateParams params, ToGenerateParams(task.job));
  // The pipeline's callback: report the step, and go on unless the task was cancelled (a
  // false return makes GenerateParallel abort the channel, so the peers stop too).
  pipeline::ProgressFn on_step = [&](int step, int total) {
    if (progress) progress(step, total);
    return !(cancelled && cancelled());
  };
  // The task thread is not the thread that loaded the model: select its device here.
  c10::DeviceGuard device_guard(pipe_->options().device);
  // Every rank count goes through actors/parallel, as `distri generate` does (a null channel
  // is a gang of one), so both give the same bytes. A fresh generator per task: the channel
  // is new for every gang.
  DISTRI_ASSIGN_OR_RETURN(pipeline::GenerateResult result,
                          parallel::GenerateParallel(*pipe_, params, channel, options_.parallel, on_step));
  TaskOutput out;
  out.denoise_ms = result.seconds_denoise * 1000.0;
  if (task.rank != 0) return out;  // only rank 0 decodes and carries the image
  const auto t0 = std::chrono::steady_clock::now();
  out.format = wire::OutputFormat::kPng;
  out.width = static_cast<uint32_t>(result.image.width);
  out.height = static_cast<uint32_t>(result.image.height);
  DISTRI_ASSIGN_OR_RETURN(out.image, pipeline::EncodeImagePng(result.image, params, options_.model_dir));
  out.decode_ms = result.seconds_decode * 1000.0 +
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace distri::worker
