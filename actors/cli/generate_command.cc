#include "actors/cli/generate_command.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "actors/cli/progress_bar.h"
#include "actors/common/torch_util.h"
#include "actors/model/blocks/attention_backend.h"
#include "actors/model/blocks/fused_ops.h"
#include "actors/pipeline/image_output.h"
#include "actors/pipeline/pipeline.h"
#include "runtime/channel/factory.h"
#include "runtime/channel/launch_env.h"
#include "runtime/common/png.h"

namespace distri::cli {
namespace {

// One render of the job on a rank. Wall-clock (Unix) start and end let a benchmark line up
// several processes' runs (bench/run_cluster_bench.sh's throughput baseline).
struct RunTiming {
  double text = 0, denoise = 0, decode = 0, total = 0;  // seconds; total: the whole Generate call
  double prepare = 0, finish = 0;                       // GenerateResult's seconds_prepare / _finish
  double start_unix = 0, end_unix = 0;
};

struct RankOutcome {
  Status status;
  pipeline::GenerateResult result;
  parallel::ParallelStats stats;
  std::vector<RunTiming> runs;  // one per repeat
  double load_seconds = 0;      // model load + gang wire-up
  int64_t peak_allocated = 0, peak_reserved = 0;
};

double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Loads the pipeline on `device` and renders the job `repeat` times on this rank. The channel
// is made by `connect` after the (slow) model load, so that every rank's load overlaps.
using GroupChannelFactory = std::function<Result<std::unique_ptr<channel::Channel>>(int, int, int)>;

RankOutcome RunRank(const GenerateArgs& a, c10::Device device, at::ScalarType dtype,
                    const std::function<Result<std::unique_ptr<channel::Channel>>()>& connect,
                    const GroupChannelFactory& make_group_channel, bool show_progress) {
  RankOutcome out;
  const auto load_start = std::chrono::steady_clock::now();
  c10::DeviceGuard device_guard(device);
  pipeline::LoadOptions lo;
  lo.device = device;
  lo.dtype = dtype;
  lo.variant = a.variant;
  auto pipe = pipeline::Pipeline::Load(a.model, lo);
  if (!pipe.ok()) {
    out.status = pipe.status();
    return out;
  }
  std::unique_ptr<channel::Channel> ch;
  if (connect) {
    auto made = connect();
    if (!made.ok()) {
      out.status = made.status().WithContext("connecting the gang");
      return out;
    }
    ch = std::move(*made);
  }
  parallel::ParallelOptions options = a.parallel;
  options.split_cfg = !a.no_split_cfg;
  options.cuda_graphs = !a.no_cuda_graphs;
  options.collective_memory = !a.no_collective_memory;
  model::ParseStripConvForm(a.strip_conv, &options.strip_conv);  // checked by the option
  options.make_group_channel = make_group_channel;
  parallel::ParallelGenerator generator(**pipe, ch.get(), options);
  ResetPeakMemory(device);
  out.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  for (int i = 0; i < a.repeat; ++i) {
    ProgressBar bar(a.repeat > 1 ? "denoising " + std::to_string(i + 1) + "/" + std::to_string(a.repeat) : "denoising");
    RunTiming t;
    t.start_unix = UnixSeconds();
    const auto start = std::chrono::steady_clock::now();
    auto r = generator.Generate(a.params, [&](int step, int n) {
      if (show_progress) bar.Update(step, n);
      return true;
    }, &out.stats);
    if (show_progress) bar.Finish();
    if (!r.ok()) {
      out.status = r.status();
      return out;
    }
    t.total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    t.end_unix = UnixSeconds();
    t.text = r->seconds_text;
    t.denoise = r->seconds_denoise;
    t.decode = r->seconds_decode;
    t.prepare = r->seconds_prepare;
    t.finish = r->seconds_finish;
    out.runs.push_back(t);
    out.result = std::move(*r);
  }
  // The stale buffers in collective memory (an NCCL window) are outside LibTorch's statistics.
  out.peak_allocated = PeakAllocatedBytes(device) + out.stats.collective_bytes;
  out.peak_reserved = PeakReservedBytes(device) + out.stats.collective_bytes;
  return out;
}

// The channel among the ranks of CFG group `group` (ParallelOptions::make_group_channel).
Result<std::unique_ptr<channel::Channel>> MakeGroupChannel(channel::Backend backend, channel::Rendezvous& rendezvous,
                                                           int group, int rank, int size,
                                                           std::chrono::milliseconds connect_timeout) {
  channel::ChannelOptions o;
  o.rendezvous_prefix = "distri/generate/group" + std::to_string(group);
  o.connect_timeout = connect_timeout;
  return channel::MakeChannel(backend, rank, size, rendezvous, o);
}

Result<c10::Device> RankDevice(const c10::Device& base, int local_rank) {
  if (!base.is_cuda()) return base;
  const int count = static_cast<int>(at::getNumGPUs());
  const int index = (base.has_index() ? base.index() : 0) + local_rank;
  if (index >= count) {
    return Status::InvalidArgument("rank " + std::to_string(local_rank) + " needs cuda:" + std::to_string(index) +
                                   " but this machine has " + std::to_string(count) + " GPU(s)");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

Result<channel::Backend> PickBackend(const std::string& name, const c10::Device& device, bool multi_process) {
  if (name != "auto") return channel::ParseBackend(name);
  if (device.is_cuda()) return channel::Backend::kNccl;
  return multi_process ? channel::Backend::kUcx : channel::Backend::kLocal;
}

// Where image `i` (0-based) of `n` goes: --out itself for one image, else "-<i+1>" before its
// extension (out.png -> out-1.png, out-2.png, ...).
std::string ImagePath(const std::string& out, int i, int n) {
  if (n == 1) return out;
  const size_t slash = out.find_last_of('/');
  const size_t dot = out.find_last_of('.');
  const bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash + 1);
  const std::string stem = has_ext ? out.substr(0, dot) : out, ext = has_ext ? out.substr(dot) : "";
  return stem + "-" + std::to_string(i + 1) + ext;
}

int Report(const GenerateArgs& a, const RankOutcome& r0, int world, const std::string& backend,
           const std::vector<RankOutcome>* all) {
  const auto png_start = std::chrono::steady_clock::now();
  std::vector<const RgbImage*> images = {&r0.result.image};
  for (const RgbImage& im : r0.result.extra_images) images.push_back(&im);
  const int n = static_cast<int>(images.size());
  double png_seconds = 0;
  for (int i = 0; i < n; ++i) {
    auto png = pipeline::EncodeImagePng(*images[i], a.params, a.model);
    // Encoded once (the last repeat's images); the first one's time is reported with every
    // repeat, since a job through the cluster encodes its PNG on rank 0 too.
    if (i == 0) png_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - png_start).count();
    if (!png.ok()) {
      std::cerr << "distri generate: " << png.status().ToString() << "\n";
      return 1;
    }
    if (auto s = WriteFile(ImagePath(a.out, i, n), *png); !s.ok()) {
      std::cerr << "distri generate: " << s.ToString() << "\n";
      return 1;
    }
  }
  if (!a.save_latents.empty()) {
    at::Tensor l = r0.result.latents.contiguous();
    std::string bytes(static_cast<const char*>(l.data_ptr()), static_cast<size_t>(l.numel()) * sizeof(float));
    if (auto s = WriteFile(a.save_latents, bytes); !s.ok()) {
      std::cerr << "distri generate: --save-latents: " << s.ToString() << "\n";
      return 1;
    }
  }
  if (a.json) {
    // One line per repeat on stdout (stderr keeps the human report): repeat 0 includes CUDA
    // graph capture, later repeats are warm.
    for (size_t i = 0; i < r0.runs.size(); ++i) {
      const RunTiming& t = r0.runs[i];
      std::printf("{\"repeat\":%zu,\"height\":%d,\"width\":%d,\"steps\":%d,\"ranks\":%d,\"load_s\":%.4f,"
                  "\"text_s\":%.4f,\"denoise_s\":%.4f,\"decode_s\":%.4f,\"total_s\":%.4f,\"png_s\":%.4f,"
                  "\"prepare_s\":%.4f,\"finish_s\":%.4f,\"start_unix\":%.6f,\"end_unix\":%.6f}\n",
                  i, r0.result.image.height, r0.result.image.width, a.params.steps, world, r0.load_seconds, t.text,
                  t.denoise, t.decode, t.total, png_seconds, t.prepare, t.finish, t.start_unix, t.end_unix);
    }
    std::fflush(stdout);
  }
  if (a.quiet) return 0;
  const auto& res = r0.result;
  const std::string wrote = n == 1 ? a.out : ImagePath(a.out, 0, n) + " .. " + ImagePath(a.out, n - 1, n);
  std::fprintf(stderr, "wrote %s (%dx%d): text %.2f s, denoise %.3f s, decode %.2f s\n", wrote.c_str(),
               res.image.width, res.image.height, res.seconds_text, res.seconds_denoise, res.seconds_decode);
  if (a.repeat > 1) {
    std::fprintf(stderr, "denoise per run:");
    for (const RunTiming& t : r0.runs) std::fprintf(stderr, " %.3f", t.denoise);
    std::fprintf(stderr, " s\n");
  }
  if (world > 1) {
    if (a.parallel.parallelism == "tensor") {
      std::fprintf(stderr, "gang: %d ranks, tensor parallelism (heads, feed-forward and resnet channels split)\n", world);
    } else {
      std::fprintf(stderr, "gang: %d ranks (%d CFG group(s) x %d strip(s)), %s, %s, stale buffers %.1f MiB%s\n", world,
                   r0.stats.layout.groups, r0.stats.layout.patch_ranks, a.parallel.parallelism.c_str(),
                   a.parallel.sync_mode.c_str(), r0.stats.stale_bytes / 1048576.0,
                   r0.stats.collective_bytes > 0 ? " (in an NCCL symmetric window)" : "");
    }
    std::fprintf(stderr, "channel backend: %s\n", backend.c_str());
  }
  if (all) {
    for (size_t r = 0; r < all->size(); ++r) {
      if ((*all)[r].peak_allocated > 0) {
        std::fprintf(stderr, "rank %zu peak memory: %.2f GiB allocated up to the end of denoising, %.2f GiB with "
                     "the decode (%.2f GiB reserved)\n", r, (*all)[r].stats.peak_denoise_bytes / 1073741824.0,
                     (*all)[r].peak_allocated / 1073741824.0, (*all)[r].peak_reserved / 1073741824.0);
      }
    }
  } else if (r0.peak_allocated > 0) {
    std::fprintf(stderr, "peak memory: %.2f GiB allocated up to the end of denoising, %.2f GiB with the decode "
                 "(%.2f GiB reserved)\n", r0.stats.peak_denoise_bytes / 1073741824.0, r0.peak_allocated / 1073741824.0,
                 r0.peak_reserved / 1073741824.0);
  }
  return 0;
}

}  // namespace

void AddGenerateOptions(CLI::App& cmd, GenerateArgs& a) {
  cmd.add_option("--model", a.model, "Model folder in diffusers' layout")->required();
  cmd.add_option("--prompt,-p", a.params.prompt, "Prompt");
  cmd.add_option("--negative-prompt,-n", a.params.negative_prompt, "Negative prompt");
  cmd.add_option("--height,-H", a.params.height, "Image height in pixels, a multiple of 8 (default: the model's)");
  cmd.add_option("--width,-W", a.params.width, "Image width in pixels, a multiple of 8 (default: the model's)");
  cmd.add_option("--steps,-s", a.params.steps, "Denoising steps")->capture_default_str();
  cmd.add_option("--guidance,-g", a.params.guidance, "Classifier-free guidance scale")->capture_default_str();
  cmd.add_option("--guidance-rescale", a.params.guidance_rescale,
                 "Rescale the guided prediction toward the conditional one's std (0..1, diffusers' guidance_rescale)")
      ->capture_default_str();
  cmd.add_option("--seed", a.params.seed, "Noise seed")->capture_default_str();
  cmd.add_option("--num-images", a.params.num_images,
                 "Images of the prompt rendered as one batch (diffusers' num_images_per_prompt); with N > 1 "
                 "--out FILE.png becomes FILE-1.png .. FILE-N.png")
      ->capture_default_str();
  cmd.add_option("--sampler", a.params.sampler, "default (the model's scheduler), ddim, euler, dpmpp_2m")
      ->capture_default_str();
  cmd.add_option("--clip-skip", a.params.clip_skip, "Skip the last N text encoder layers")->capture_default_str();
  cmd.add_option("--dtype", a.dtype, "auto, fp32, fp16 or bf16")->capture_default_str();
  cmd.add_option("--device", a.device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  cmd.add_option("--variant", a.variant, "Weight file variant to prefer, e.g. fp16");
  cmd.add_option("--out,-o", a.out, "Output PNG file")->capture_default_str();
  cmd.add_flag("--quiet,-q", a.quiet, "No progress bar");
  cmd.add_option("--gpus", a.gpus, "Render on N GPUs of this machine (one thread per GPU, NCCL)");
  cmd.add_option("--ranks", a.ranks, "Render with N ranks as threads on --device (CPU: local channel)");
  cmd.add_option("--backend", a.backend, "Channel backend of a gang: auto, nccl, ucx or local")->capture_default_str();
  cmd.add_option("--parallelism", a.parallel.parallelism, "patch, naive_patch or tensor")->capture_default_str();
  cmd.add_option("--sync-mode", a.parallel.sync_mode,
                 "corrected_async_gn, stale_gn, sync_gn, separate_gn, full_sync or no_sync")
      ->capture_default_str();
  cmd.add_option("--warmup-steps", a.parallel.warmup_steps, "Synchronous steps before displaced ones")
      ->capture_default_str();
  cmd.add_flag("--no-split-cfg", a.no_split_cfg, "Do not put the CFG halves on two halves of the gang");
  cmd.add_flag("--no-cuda-graphs", a.no_cuda_graphs, "Run every step eagerly");
  cmd.add_option("--strip-conv", a.strip_conv,
                 "How a patch's 3x3 convolutions take their halo rows: halo (one convolution over halo + strip; "
                 "the same bits every run), auto (the fastest form on GPUs, timed once per shape; the last bits "
                 "may differ between runs; up to ~1% faster), seam or wide")
      ->check(CLI::IsMember({"auto", "halo", "seam", "wide"}))
      ->capture_default_str();
  cmd.add_flag("--no-collective-memory", a.no_collective_memory,
               "Stale buffers from LibTorch's allocator instead of one NCCL symmetric window (NCCL_WIN_ENABLE=0 "
               "has the same effect)");
  cmd.add_option("--attention", a.attention,
                 "Attention kernels on GPUs: default (LibTorch's choice, cuDNN on H100/H200), cudnn, flash, efficient, "
                 "or SELF,CROSS (as DISTRI_SDPA_BACKEND)");
  cmd.add_flag("--cudnn-benchmark", a.cudnn_benchmark,
               "Let cuDNN time its convolution algorithms per shape on first use (as torch.backends.cudnn.benchmark; "
               "worth it for many images of one size)");
  cmd.add_option("--save-latents", a.save_latents,
                 "Also write the final latents (raw float32, [num_images, 4, h, w]) to this file");
  cmd.add_option("--repeat", a.repeat, "Render the job N times in this process (warm timings)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd.add_flag("--json", a.json,
               "Also print one JSON line per repeat on stdout: repeat, height, width, steps, ranks, load_s, text_s, "
               "denoise_s, decode_s, total_s, start_unix, end_unix");
}

int RunGenerate(GenerateArgs a) {
  if (!a.attention.empty() && !model::SetSdpaBackend(a.attention)) {
    std::cerr << "distri generate: --attention: unknown backend '" << a.attention
              << "' (default, cudnn, flash, efficient, or SELF,CROSS)\n";
    return 2;
  }
  at::globalContext().setBenchmarkCuDNN(a.cudnn_benchmark);
  auto base = ParseDevice(a.gpus > 0 ? (a.device == "auto" ? "cuda" : a.device) : a.device);
  if (!base.ok()) {
    std::cerr << "distri generate: --device: " << base.status().message() << "\n";
    return 2;
  }
  // auto: fp16 on GPUs (the VAE decodes in fp32 where fp16 overflows), fp32 on CPUs.
  auto dtype = ParseDtype(a.dtype == "auto" ? (base->is_cuda() ? "fp16" : "fp32") : a.dtype);
  if (!dtype.ok()) {
    std::cerr << "distri generate: --dtype: " << dtype.status().message() << "\n";
    return 2;
  }
  if (a.gpus > 0 && a.ranks > 0 && a.gpus != a.ranks) {
    std::cerr << "distri generate: --gpus " << a.gpus << " and --ranks " << a.ranks << " disagree\n";
    return 2;
  }
  if (a.gpus < 0 || a.ranks < 0) {
    std::cerr << "distri generate: --gpus and --ranks take a positive count\n";
    return 2;
  }
  const int threads = std::max({a.gpus, a.ranks, 1});
  if (base->is_cuda() && threads > 1 && threads > static_cast<int>(at::getNumGPUs())) {
    std::cerr << "distri generate: " << threads << " GPUs asked, this machine has " << at::getNumGPUs() << "\n";
    return 2;
  }
  const bool launched = std::getenv("DISTRI_WORLD_SIZE") != nullptr;
  if (launched && threads > 1) {
    std::cerr << "distri generate: --gpus/--ranks cannot be combined with `distri launch` (one rank per process)\n";
    return 2;
  }

  if (launched) {
    auto env = channel::ReadLaunchEnv();
    if (!env.ok()) {
      std::cerr << "distri generate: " << env.status().ToString() << "\n";
      return 2;
    }
    int local_rank = env->rank;
    if (const char* lr = std::getenv("DISTRI_LOCAL_RANK")) local_rank = std::atoi(lr);
    auto device = RankDevice(*base, local_rank);
    auto backend = device.ok() ? PickBackend(a.backend, *device, true) : Result<channel::Backend>(device.status());
    if (!backend.ok()) {
      std::cerr << "distri generate: " << backend.status().ToString() << "\n";
      return 2;
    }
    std::unique_ptr<channel::Rendezvous> rendezvous;  // kept for the group channels
    std::function<Result<std::unique_ptr<channel::Channel>>()> connect = [&]() -> Result<std::unique_ptr<channel::Channel>> {
      DISTRI_ASSIGN_OR_RETURN(rendezvous, channel::ConnectLaunchRendezvous(*env, std::chrono::minutes(5)));
      channel::ChannelOptions o;
      o.rendezvous_prefix = "distri/generate";
      o.connect_timeout = std::chrono::minutes(5);
      return channel::MakeChannel(*backend, env->rank, env->world_size, *rendezvous, o);
    };
    GroupChannelFactory group = [&](int g, int r, int n) {
      return MakeGroupChannel(*backend, *rendezvous, g, r, n, std::chrono::minutes(5));
    };
    RankOutcome r = RunRank(a, *device, *dtype, env->world_size > 1 ? connect : decltype(connect)(),
                            env->world_size > 1 ? group : GroupChannelFactory(), env->rank == 0 && !a.quiet);
    if (!r.status.ok()) {
      std::cerr << "distri generate: rank " << env->rank << ": " << r.status.ToString() << "\n";
      return 1;
    }
    if (env->rank != 0) return 0;
    return Report(a, r, env->world_size, std::string(channel::BackendName(*backend)), nullptr);
  }

  auto backend = PickBackend(a.backend, *base, false);
  if (!backend.ok()) {
    std::cerr << "distri generate: --backend: " << backend.status().message() << "\n";
    return 2;
  }
  std::vector<RankOutcome> outcomes(threads);
  channel::MemoryRendezvous rendezvous;
  std::vector<std::thread> workers;
  for (int r = 0; r < threads; ++r) {
    workers.emplace_back([&, r] {
      auto device = RankDevice(*base, r);
      if (!device.ok()) {
        outcomes[r].status = device.status();
        return;
      }
      std::function<Result<std::unique_ptr<channel::Channel>>()> connect;
      GroupChannelFactory group;
      if (threads > 1) {
        connect = [&, r] { return channel::MakeChannel(*backend, r, threads, rendezvous); };
        group = [&](int g, int rank, int n) {
          return MakeGroupChannel(*backend, rendezvous, g, rank, n, channel::ChannelOptions{}.connect_timeout);
        };
      }
      outcomes[r] = RunRank(a, *device, *dtype, connect, group, r == 0 && !a.quiet);
    });
  }
  for (auto& w : workers) w.join();
  for (int r = 0; r < threads; ++r) {
    if (!outcomes[r].status.ok()) {
      std::cerr << "distri generate: " << (threads > 1 ? "rank " + std::to_string(r) + ": " : "")
                << outcomes[r].status.ToString() << "\n";
      return 1;
    }
  }
  return Report(a, outcomes[0], threads, std::string(channel::BackendName(*backend)), &outcomes);
}

}  // namespace distri::cli
