// The denoise actor: a worker::TaskExecutor over actors/pipeline and actors/parallel
// (docs/runtime-design.md, "Executor seam"). It loads the model once and renders one rank of
// each task with GenerateParallel (a gang of one has no channel), exactly as `distri generate`
// does, and rank 0 encodes the PNG with the same code (pipeline::EncodeImagePng), so a job and
// `distri generate` with the same flags and the same --model text give the same bytes.
// Cancellation is polled after every step (the pipeline's progress callback). With
// JobSpec.preview_every, rank 0 makes a latent preview PNG (latent_preview.h) every that many
// steps and hands it to the host with that step's progress (it syncs the device that step).
//
// Warm runs: the executor keeps one ParallelGenerator across tasks, so its UNet runner (stale
// buffers, CUDA graphs) is built by the first job of a size and replayed by the later ones:
// - a gang of one (no channels) keeps a solo generator, rebuilt when the job's DistriFusion
//   options differ;
// - a gang keeps a gang generator over the actor host's kept gang channels (the gang channel,
//   and the CFG group channels through GangChannels::Group, made once per gang), keyed by the
//   gang channel and the options: the next job on the same kept gang replays it, another
//   gang or other options rebuild it, and ReleaseGang (the host drops the channels) drops it.
// Either is dropped after a failed or cancelled task (the runner's state is not trusted).
// Only one generator exists at a time: each attaches its runner's layer context to the one
// UNet, so the other is reset before a generator of the other kind is built or used.
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
  // Generators built for gangs of one / for gangs so far (tests and logs: a warm actor builds
  // one per option set, and one per gang and option set).
  int solo_generators_built() const { return solo_built_; }
  int gang_generators_built() const { return gang_built_; }

  Result<TaskOutput> Run(const wire::AssignTask& task, GangChannels* gang, const ProgressFn& progress,
                         const CancelFn& cancelled) override;
  void ReleaseGang() override;

 private:
  DenoiseExecutor(DenoiseOptions options, std::unique_ptr<pipeline::Pipeline> pipe)
      : options_(std::move(options)), pipe_(std::move(pipe)) {}
  // The generator for a gang of one with `options`, kept from the previous task when it matches.
  parallel::ParallelGenerator& SoloGenerator(const parallel::ParallelOptions& options);
  // The generator over `gang` with `options`, kept from the previous task when both match.
  parallel::ParallelGenerator& GangGenerator(GangChannels& gang, const parallel::ParallelOptions& options);

  DenoiseOptions options_;
  std::unique_ptr<pipeline::Pipeline> pipe_;
  // Task thread only. At most one of solo_ and gang_ exists; while one does, the pipeline runs
  // only through it (its UNet carries the runner's layer context).
  std::unique_ptr<parallel::ParallelGenerator> solo_;
  parallel::ParallelOptions solo_options_;
  int solo_built_ = 0;
  std::unique_ptr<parallel::ParallelGenerator> gang_;  // over gang_channel_ (borrowed from the host)
  channel::Channel* gang_channel_ = nullptr;
  parallel::ParallelOptions gang_options_;
  int gang_built_ = 0;
};

}  // namespace distri::worker
