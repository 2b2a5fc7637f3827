// The denoise actor: a worker::TaskExecutor over actors/pipeline and actors/parallel
// (docs/runtime-design.md, "Executor seam"). It loads the model once and renders one rank of
// each task with GenerateParallel (a gang of one has no channel), exactly as `distri generate`
// does, and rank 0 encodes the PNG with the same code (pipeline::EncodeImagePng), so a job and
// `distri generate` with the same flags and the same --model text give the same bytes.
// Cancellation is polled after every step (the pipeline's progress callback).
//
// Warm runs: a gang of one (no channel) renders through one ParallelGenerator kept across
// tasks, so its UNet runner (and its CUDA graphs) is built by the first job of a size and
// replayed by the later ones; it is rebuilt when the job's DistriFusion options differ, and
// dropped after a failed or cancelled task and before any gang task. A gang task gets a fresh
// generator over its channel (each attempt has a new channel).
#pragma once

#include <memory>
#include <string>

#include "actors/parallel/parallel_generate.h"
#include "actors/pipeline/pipeline.h"
#include "runtime/common/status.h"
#include "runtime/worker/task_executor.h"

namespace distri::worker {

struct DenoiseOptions {
  std::string model_dir;         // required
  std::string device = "auto";   // auto (cuda:0 when this process sees a GPU, else cpu), cpu, cuda, cuda:N
  std::string dtype = "auto";    // auto (fp16 on CUDA, fp32 on CPU, as `distri generate`), fp32, fp16, bf16
  std::string variant;           // weight file variant to prefer ("fp16"), as `distri generate --variant`
  parallel::ParallelOptions parallel;  // gang options (defaults as `distri generate`'s)
};

// wire::JobSpec -> the pipeline's parameters (seed required: AssignTask always carries one).
Result<pipeline::GenerateParams> ToGenerateParams(const wire::JobSpec& job);
// `defaults` with the job's DistriFusion options (sync_mode, warmup_steps) where it sets them.
parallel::ParallelOptions ToParallelOptions(const wire::JobSpec& job, const parallel::ParallelOptions& defaults);

class DenoiseExecutor : public TaskExecutor {
 public:
  // Loads the pipeline (seconds to minutes). Errors name the model folder or the flag.
  static Result<std::unique_ptr<DenoiseExecutor>> Load(const DenoiseOptions& options);

  // "cuda:0" or "cpu": the device the model lives on.
  std::string device() const;
  // Generators built for gangs of one so far (tests: a warm actor builds one per option set).
  int solo_generators_built() const { return solo_built_; }

  Result<TaskOutput> Run(const wire::AssignTask& task, channel::Channel* channel, const ProgressFn& progress,
                         const CancelFn& cancelled) override;

 private:
  DenoiseExecutor(DenoiseOptions options, std::unique_ptr<pipeline::Pipeline> pipe)
      : options_(std::move(options)), pipe_(std::move(pipe)) {}
  // The generator for a gang of one with `options`, kept from the previous task when it matches.
  parallel::ParallelGenerator& SoloGenerator(const parallel::ParallelOptions& options);

  DenoiseOptions options_;
  std::unique_ptr<pipeline::Pipeline> pipe_;
  // Task thread only. While solo_ exists the pipeline runs only through it (its UNet carries
  // the runner's layer context): it is reset before any other use.
  std::unique_ptr<parallel::ParallelGenerator> solo_;
  parallel::ParallelOptions solo_options_;
  int solo_built_ = 0;
};

}  // namespace distri::worker
