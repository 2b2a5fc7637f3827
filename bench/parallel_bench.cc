// parallel_bench: patch-parallel latency, speedup, peak memory and quality on 1..N GPUs of one
// machine, one process (one thread per GPU, NCCL), the model loaded once per GPU.
//
//   parallel_bench --model DIR --gpus 1,2,4 --sizes 1024,2048 [--steps 50] [--repeats 3]
//                  [--sync-mode corrected_async_gn] [--warmup-steps 4] [--out results.jsonl]
//                  [--parallelism patch|naive_patch|tensor] [--profile]
//
// For every size and GPU count: one warm-up job (it captures the CUDA graphs of the phases; few
// steps), then `repeats` timed jobs of `steps` DDIM steps with CFG. Latency = text encoding +
// denoising loop (no VAE decode), the paper's and distrifuser's measure (latent output).
// Peak memory = the largest peak allocated by LibTorch on any rank of the gang from a timed
// job's start to the end of its denoising loop (models, text encoding, UNet; not the VAE
// decode, which rank 0 runs after the loop: distrifuser's latent-output measure). Quality: the image of each gang is compared with the 1-GPU image (PSNR, dB) and
// with --exact also a full_sync run (its final latent's relative error against 1 GPU).
// --profile: one more job under Kineto (also of one GPU, for its kernels as the baseline) (CUPTI sees the kernels of the graph
// replays on every GPU of the process): per rank the job's denoise time, the time its GPU ran
// compute kernels (intervals merged over streams), NCCL kernels, both at once, and the top
// kernels of rank 0 (where the multi-GPU time goes; the GPU machine has no Nsight Systems).
// One size and one GPU count per --profile process (CUPTI crashed in a later graph capture).
#include <CLI/CLI.hpp>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>

#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "actors/common/torch_util.h"
#include "actors/model/blocks/fused_ops.h"
#include "actors/parallel/parallel_generate.h"
#include "actors/pipeline/pipeline.h"
#include "runtime/channel/factory.h"

namespace {

using distri::Result;
using distri::Status;
using distri::parallel::ParallelOptions;
using distri::pipeline::GenerateParams;
using distri::pipeline::GenerateResult;
using distri::pipeline::Pipeline;

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

double Psnr(const distri::RgbImage& a, const distri::RgbImage& b) {
  if (a.pixels.size() != b.pixels.size() || a.pixels.empty()) return -1;
  double se = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const double d = static_cast<double>(a.pixels[i]) - static_cast<double>(b.pixels[i]);
    se += d * d;
  }
  const double mse = se / static_cast<double>(a.pixels.size());
  return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

struct GangRun {
  Status status;
  std::vector<double> seconds;  // per timed job: text + denoise
  int64_t peak_bytes = 0;       // max over ranks
  int64_t stale_bytes = 0;      // rank 0
  GenerateResult last;          // rank 0's last job
  // Rank 0's captured graphs (synchronous and displaced phase).
  distri::parallel::DisplacedUNetRunner::GraphNodes graph_nodes[2];
  int64_t exchange_chunks = 0;  // rank 0's stale all-gathers a step
  bool window = false;          // rank 0's stale buffers in an NCCL symmetric window
};

// Busy time of a set of [start, end) intervals (overlaps counted once).
double UnionMs(std::vector<std::pair<uint64_t, uint64_t>> v) {
  std::sort(v.begin(), v.end());
  uint64_t total = 0, cur_s = 0, cur_e = 0;
  for (auto [s, e] : v) {
    if (s > cur_e) {
      total += cur_e - cur_s;
      cur_s = s;
      cur_e = e;
    } else {
      cur_e = std::max(cur_e, e);
    }
  }
  return (total + cur_e - cur_s) / 1e6;
}

// Overlap of two interval sets, each merged first.
double OverlapMs(const std::vector<std::pair<uint64_t, uint64_t>>& a,
                 const std::vector<std::pair<uint64_t, uint64_t>>& b) {
  std::vector<std::pair<uint64_t, uint64_t>> both = a;
  both.insert(both.end(), b.begin(), b.end());
  return UnionMs(a) + UnionMs(b) - UnionMs(both);
}

void PrintProfile(const torch::autograd::profiler::ProfilerResult& result, int n, const std::vector<double>& denoise_s,
                  int steps, const std::string& tag) {
  struct Dev {
    std::vector<std::pair<uint64_t, uint64_t>> compute, nccl;
    std::map<std::string, std::pair<double, int>> by_name;
    struct Span { uint64_t start, end; std::string name; };
    std::vector<Span> spans;  // every kernel, memcpy and memset, for the gap analysis
  };
  std::map<int, Dev> devs;
  for (const auto& e : result.events()) {
    if (e.deviceType() != c10::DeviceType::CUDA || e.durationNs() == 0) continue;
    Dev& d = devs[e.deviceIndex()];
    const std::string name = e.name();
    const bool nccl = name.find("nccl") != std::string::npos;
    (nccl ? d.nccl : d.compute).push_back({e.startNs(), e.startNs() + e.durationNs()});
    d.spans.push_back({e.startNs(), e.startNs() + e.durationNs(),
                       name.substr(0, 52) + "@s" + std::to_string(e.deviceResourceId())});
    auto& [ms, count] = d.by_name[name.substr(0, 100)];
    ms += e.durationNs() / 1e6;
    count += 1;
  }
  std::printf("profile %s: per rank, one job of %d steps (ms):\n", tag.c_str(), steps);
  for (auto& [dev, d] : devs) {
    const double wall = dev < static_cast<int>(denoise_s.size()) ? denoise_s[dev] * 1e3 : 0;
    std::printf("profile %s: cuda:%d denoise %.1f  compute busy %.1f  nccl busy %.1f  both at once %.1f  "
                "idle %.1f\n",
                tag.c_str(), dev, wall, UnionMs(d.compute), UnionMs(d.nccl), OverlapMs(d.compute, d.nccl),
                wall - UnionMs(d.compute));
  }
  // Where the GPU does nothing: the gaps between consecutive activities (kernels, copies,
  // memsets, on any stream) of each rank, by size, and the largest ones by the activity before
  // and after them. Many gaps of a few microseconds are launch gaps between graph nodes; long
  // ones are waits (for a peer's collective, for the host).
  for (auto& [dev, d] : devs) {
    std::sort(d.spans.begin(), d.spans.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
    double small_ms = 0, mid_ms = 0, big_ms = 0;
    int small_n = 0, mid_n = 0, big_n = 0;
    std::map<std::string, std::pair<double, int>> by_pair;
    uint64_t cur_end = 0;
    std::string last;
    for (const auto& sp : d.spans) {
      if (cur_end != 0 && sp.start > cur_end) {
        const double us = (sp.start - cur_end) / 1e3;
        if (us < 5) {
          small_ms += us / 1e3, ++small_n;
        } else {
          (us < 50 ? mid_ms : big_ms) += us / 1e3;
          ++(us < 50 ? mid_n : big_n);
          auto& [ms, count] = by_pair[last + " -> " + sp.name];
          ms += us / 1e3;
          ++count;
        }
      }
      if (sp.end > cur_end) {
        cur_end = sp.end;
        last = sp.name;
      }
    }
    std::printf("profile %s: cuda:%d gaps: %d under 5 us (%.1f ms), %d of 5-50 us (%.1f ms), %d over 50 us "
                "(%.1f ms)\n", tag.c_str(), dev, small_n, small_ms, mid_n, mid_ms, big_n, big_ms);
    // A timeline of ~2 steps from the middle of the job (ranks 0 and 1): every gap of 20 us or
    // more, when it began (ms into the window) and the activities around it, to tell the step
    // boundary, the exchanges and the host apart.
    if (dev <= devs.begin()->first + 1 && !d.spans.empty()) {
      // Robust to stray timestamps: the window comes from the 10th/90th percentile activities.
      const size_t m = d.spans.size();
      const uint64_t p10 = d.spans[m / 10].start, p90 = d.spans[m * 9 / 10].start;
      const uint64_t per_step = (p90 - p10) * 10 / 8 / static_cast<uint64_t>(std::max(steps, 1));
      const uint64_t from = d.spans[m * 6 / 10].start, to = from + 2 * per_step;
      std::printf("profile %s: cuda:%d timeline window %.3f ms (about 2 steps of %.3f ms)\n", tag.c_str(), dev,
                  (to - from) / 1e6, per_step / 1e6);
      uint64_t end = 0;
      std::string prev;
      int printed = 0;
      for (const auto& sp : d.spans) {
        if (sp.start >= from && sp.start < to && end != 0 && sp.start > end && sp.start - end >= 20000 &&
            printed < 80) {
          std::printf("profile %s: cuda:%d t=%7.3f ms gap %6.1f us  %s -> %s\n", tag.c_str(), dev,
                      (end - from) / 1e6, (sp.start - end) / 1e3, prev.substr(0, 45).c_str(),
                      sp.name.substr(0, 45).c_str());
          ++printed;
        }
        if (sp.end > end) {
          end = sp.end;
          prev = sp.name;
        }
      }
    }
    if (dev != devs.begin()->first) continue;
    std::vector<std::pair<double, std::string>> pairs;
    for (auto& [k, v] : by_pair) pairs.push_back({v.first, k + " (x" + std::to_string(v.second) + ")"});
    std::sort(pairs.rbegin(), pairs.rend());
    for (size_t i = 0; i < pairs.size() && i < 15; ++i) {
      std::printf("profile %s: gap %7.2f ms  %s\n", tag.c_str(), pairs[i].first, pairs[i].second.c_str());
    }
  }
  if (devs.empty()) {
    std::printf("profile %s: no CUDA kernels recorded\n", tag.c_str());
    return;
  }
  std::vector<std::pair<double, std::string>> rows;
  for (auto& [name, v] : devs.begin()->second.by_name) {
    rows.push_back({v.first, name + " (x" + std::to_string(v.second) + ")"});
  }
  std::sort(rows.rbegin(), rows.rend());
  for (size_t i = 0; i < rows.size() && i < 40; ++i) {
    std::printf("profile %s: %8.2f ms  %s\n", tag.c_str(), rows[i].first, rows[i].second.c_str());
  }
}

// Runs the gang of the first `n` pipelines: one warm-up job, then `repeats` timed ones (and one
// profiled job when `profile`).
// --zero-sm: CFG-group channels with a zero CTA policy (set once in main).
bool g_zero_sm = false;

GangRun RunGang(std::vector<std::unique_ptr<Pipeline>>& pipes, int n, const GenerateParams& params,
                const ParallelOptions& options, int repeats, int warmup_job_steps, const std::string& tag,
                bool profile) {
  GangRun run;
  namespace prof = torch::autograd::profiler;
  std::barrier sync(n);
  std::unique_ptr<prof::ProfilerResult> profiled;
  std::vector<double> profiled_denoise(n, 0);
  distri::channel::MemoryRendezvous rendezvous;
  std::vector<Status> statuses(n);
  std::vector<std::vector<double>> seconds(n);
  std::vector<int64_t> peaks(n, 0);
  std::vector<GenerateResult> last(n);
  std::vector<int64_t> stale(n, 0);
  std::vector<std::thread> threads;
  auto RunRank = [&](int r) {
    const c10::Device device = pipes[r]->options().device;
    c10::cuda::CUDAGuard guard(device.index());
    std::unique_ptr<distri::channel::Channel> ch;
    if (n > 1) {
      distri::channel::ChannelOptions co;
      co.rendezvous_prefix = "bench/" + tag;
      auto made = distri::channel::MakeChannel(distri::channel::Backend::kNccl, r, n, rendezvous, co);
      if (!made.ok()) {
        statuses[r] = made.status();
        return;
      }
      ch = std::move(*made);
    }
    ParallelOptions o = options;
    if (n > 1) {
      o.make_group_channel = [&](int g, int rank, int size) {
        distri::channel::ChannelOptions co;
        co.rendezvous_prefix = "bench/" + tag + "/group" + std::to_string(g);
        co.nccl_zero_sm = g_zero_sm;
        return distri::channel::MakeChannel(distri::channel::Backend::kNccl, rank, size, rendezvous, co);
      };
    }
    distri::parallel::ParallelGenerator generator(*pipes[r], ch.get(), o);
    GenerateParams warm = params;
    warm.steps = warmup_job_steps;
    auto w = generator.Generate(warm);
    if (!w.ok()) {
      statuses[r] = w.status().WithContext("warm-up job");
      return;
    }
    for (int i = 0; i < repeats; ++i) {
      distri::parallel::ParallelStats stats;
      auto res = generator.Generate(params, nullptr, &stats);
      if (!res.ok()) {
        statuses[r] = res.status();
        return;
      }
      seconds[r].push_back(res->seconds_text + res->seconds_denoise);
      stale[r] = stats.stale_bytes;
      if (r == 0) {
        std::copy(std::begin(stats.graph_nodes), std::end(stats.graph_nodes), std::begin(run.graph_nodes));
        run.exchange_chunks = stats.exchange_chunks;
        run.window = stats.collective_bytes > 0 && !o.peer_exchange;  // the peer block is no NCCL window
      }
      peaks[r] = std::max(peaks[r], stats.peak_denoise_bytes);
      last[r] = std::move(*res);
    }
    if (!profile) return;
    using torch::profiler::impl::ActivityType;
    const std::set<ActivityType> acts{ActivityType::CPU, ActivityType::CUDA};
    const prof::ProfilerConfig cfg(prof::ProfilerState::KINETO);
    if (r == 0) {
      prof::prepareProfiler(cfg, acts);
      prof::enableProfiler(cfg, acts);
    }
    sync.arrive_and_wait();
    auto res = generator.Generate(params);
    c10::cuda::device_synchronize();
    sync.arrive_and_wait();
    if (res.ok()) profiled_denoise[r] = res->seconds_denoise;
    if (r == 0) profiled = prof::disableProfiler();
  };
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      RunRank(r);
      if (profile && !statuses[r].ok()) sync.arrive_and_drop();  // the others must not wait for it
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r) {
    if (!statuses[r].ok()) {
      run.status = statuses[r].WithContext("rank " + std::to_string(r));
      return run;
    }
  }
  if (profiled) PrintProfile(*profiled, n, profiled_denoise, params.steps, tag);
  run.seconds = seconds[0];
  run.peak_bytes = *std::max_element(peaks.begin(), peaks.end());
  run.stale_bytes = stale[0];
  run.last = std::move(last[0]);
  return run;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"patch-parallel benchmark (one process, one thread per GPU)"};
  std::string model, gpus_text = "1,2,4", sizes_text = "1024", out_path, sync_mode = "corrected_async_gn";
  std::string parallelism = "patch", strip_conv = "halo";
  int steps = 50, repeats = 3, warmup_steps = 4, warmup_job_steps = 8;
  bool exact = false, no_split_cfg = false, profile = false, no_collective_memory = false, zero_sm = false;
  bool kv_in_place = false, no_graphs = false, no_fused_kv = false, no_padded_norm = false, no_fused_conv_bias = false,
       cudnn_benchmark = false, peer_exchange = false;
  double guidance = 5.0;
  app.add_option("--model", model, "SDXL-architecture model folder")->required();
  app.add_option("--gpus", gpus_text, "GPU counts, comma-separated (each a prefix of cuda:0..)")->capture_default_str();
  app.add_option("--sizes", sizes_text, "Square image sizes in pixels, comma-separated")->capture_default_str();
  app.add_option("--steps", steps, "DDIM steps")->capture_default_str();
  app.add_option("--repeats", repeats, "Timed jobs per configuration")->capture_default_str();
  app.add_option("--warmup-job-steps", warmup_job_steps, "Steps of the untimed warm-up job")->capture_default_str();
  app.add_option("--sync-mode", sync_mode, "DistriFusion sync mode")->capture_default_str();
  app.add_option("--parallelism", parallelism, "patch, naive_patch or tensor (gangs of 2+ GPUs)")->capture_default_str();
  app.add_option("--warmup-steps", warmup_steps, "Synchronous steps per job")->capture_default_str();
  app.add_option("--guidance", guidance, "CFG scale")->capture_default_str();
  app.add_flag("--no-split-cfg", no_split_cfg, "Patch-split the whole batch instead of splitting the CFG halves");
  app.add_flag("--no-collective-memory", no_collective_memory,
               "Stale buffers from LibTorch's allocator instead of one NCCL symmetric window");
  app.add_flag("--no-graphs", no_graphs, "Eager forwards instead of CUDA graph replays (debugging; slower)");
  app.add_flag("--kv-in-place", kv_in_place,
               "Self-attention K/V read in place from per-layer exchange chunks (no concatenation; one all-gather "
               "per self-attention)");
  app.add_flag("--no-fused-kv", no_fused_kv,
               "Displaced self-attention K/V assembled by two ATen concatenations instead of one kernel (to compare)");
  app.add_flag("--no-padded-norm", no_padded_norm,
               "Displaced 3x3 convolutions read halo + strip from a concatenation instead of their group norm's "
               "padded output (to compare)");
  app.add_option("--strip-conv", strip_conv,
                 "How displaced 3x3 convolutions run over strip + halo rows: halo (one convolution), seam (the strip "
                 "alone, then its first and last rows again), wide (padding (1, 1), two rows dropped) or auto (the "
                 "fastest, timed once per shape)")
      ->check(CLI::IsMember({"auto", "halo", "seam", "wide"}))
      ->capture_default_str();
  app.add_flag("--no-fused-conv-bias", no_fused_conv_bias,
               "Convolution biases (and the patch contexts' time-embedding and residual adds) as ATen adds instead "
               "of the bias-add kernel (to compare)");
  app.add_flag("--peer-exchange", peer_exchange,
               "Experimental, not yet shown to work: in captured CUDA graphs, stale chunks copied between the GPUs "
               "over the copy engines (flags in GPU memory) instead of NCCL all-gathers; eager steps keep the "
               "all-gathers (docs/perf/parallel-sdxl.md, ninth and tenth sessions); sets "
               "CUDA_MODULE_LOADING=EAGER");
  app.add_flag("--cudnn-benchmark", cudnn_benchmark,
               "Let cuDNN time its convolution algorithms per shape (in the eager first step of each phase, before "
               "the graph capture) instead of its heuristics: the strips' halo convolutions have shapes of their own. "
               "A 2-GPU job at 1024 px did not finish within 240 s with it (2026-11-28)");
  app.add_flag("--zero-sm", zero_sm,
               "Experimental: CFG-group channels with a zero CTA policy (all-gathers into the window on the copy "
               "engines; failed with a CUDA error in 4-GPU gangs, 2026-11-28)");
  app.add_flag("--exact", exact, "Also run full_sync gangs and report their latent error against 1 GPU");
  app.add_option("--out", out_path, "Append JSON lines here");
  app.add_flag("--profile", profile, "Print a Kineto kernel-time breakdown of one more job (one size and one GPU count per process)");
  CLI11_PARSE(app, argc, argv);
  // The peer exchange's waits spin on the GPU; a kernel loaded lazily while one spins waits for
  // it (PeerExchange::Create refuses lazy loading). Set before CUDA starts.
  if (peer_exchange) setenv("CUDA_MODULE_LOADING", "EAGER", /*overwrite=*/1);
  // The command's options in every JSON line, so a result names what it measured.
  std::string args_text;
  for (int i = 1; i < argc; ++i) {
    for (const char* c = argv[i]; *c != '\0'; ++c) {
      if (static_cast<unsigned char>(*c) < 0x20) {  // no control characters in a JSON string
        args_text += ' ';
        continue;
      }
      if (*c == '"' || *c == '\\') args_text += '\\';
      args_text += *c;
    }
    if (i + 1 < argc) args_text += ' ';
  }
  g_zero_sm = zero_sm;
  if (no_fused_conv_bias) distri::model::SetFusedConvBiasEnabled(false);
  at::globalContext().setBenchmarkCuDNN(cudnn_benchmark);

  const std::vector<int> gpu_counts = ParseList(gpus_text), sizes = ParseList(sizes_text);
  // Kineto leaves CUPTI callbacks behind: a CUDA graph captured after a profiled job crashed
  // in CUPTI (4x H100, 2026-11-28), so one process profiles one size and one gang size.
  if (profile && (sizes.size() != 1 || gpu_counts.size() != 1)) {
    std::fprintf(stderr, "parallel_bench: --profile takes one size and one GPU count per process "
                         "(a graph captured after a profiled job crashes in CUPTI)\n");
    return 2;
  }
  const int max_gpus = *std::max_element(gpu_counts.begin(), gpu_counts.end());
  if (max_gpus > static_cast<int>(at::getNumGPUs())) {
    std::fprintf(stderr, "parallel_bench: %d GPUs asked, %d visible\n", max_gpus, static_cast<int>(at::getNumGPUs()));
    return 2;
  }
  // One pipeline per GPU, loaded in parallel.
  std::vector<std::unique_ptr<Pipeline>> pipes(max_gpus);
  {
    std::vector<Status> st(max_gpus);
    std::vector<std::thread> loaders;
    for (int g = 0; g < max_gpus; ++g) {
      loaders.emplace_back([&, g] {
        c10::cuda::CUDAGuard guard(g);
        distri::pipeline::LoadOptions lo;
        lo.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(g));
        lo.dtype = at::kHalf;
        lo.variant = "fp16";
        auto p = Pipeline::Load(model, lo);
        if (!p.ok()) {
          st[g] = p.status();
          return;
        }
        pipes[g] = std::move(*p);
      });
    }
    for (auto& t : loaders) t.join();
    for (int g = 0; g < max_gpus; ++g) {
      if (!st[g].ok()) {
        std::fprintf(stderr, "parallel_bench: loading on cuda:%d: %s\n", g, st[g].ToString().c_str());
        return 1;
      }
    }
  }
  std::ofstream out;
  if (!out_path.empty()) out.open(out_path, std::ios::app);
  std::printf("%-6s %-5s %-20s %10s %8s %10s %10s %8s %s\n", "size", "gpus", "mode", "latency_s", "speedup",
              "peak_GiB", "stale_MiB", "psnr_dB", "runs_s");
  for (int size : sizes) {
    GenerateParams params;
    params.prompt = "a photo of an astronaut riding a horse on the moon";
    params.height = params.width = size;
    params.steps = steps;
    params.guidance = guidance;
    params.sampler = "ddim";
    params.seed = 1234;
    double base_latency = 0;
    GenerateResult base;
    for (int n : gpu_counts) {
      std::vector<std::string> modes = {n == 1 ? std::string("single") : parallelism == "patch" ? sync_mode : parallelism};
      if (exact && n > 1) modes.push_back("full_sync");
      for (const std::string& mode : modes) {
        ParallelOptions o;
        o.sync_mode = mode == "single" || mode == parallelism ? "corrected_async_gn" : mode;
        if (n > 1 && mode != "full_sync") o.parallelism = parallelism;
        o.warmup_steps = warmup_steps;
        o.split_cfg = !no_split_cfg;
        o.collective_memory = !no_collective_memory;
        o.kv_in_place = kv_in_place;
        o.fused_kv_assembly = !no_fused_kv;
        o.norm_into_padded_strip = !no_padded_norm;
        distri::model::ParseStripConvForm(strip_conv, &o.strip_conv);
        o.peer_exchange = peer_exchange;
        o.cuda_graphs = !no_graphs;
        const std::string tag = std::to_string(size) + "/" + std::to_string(n) + "/" + mode;
        GangRun run = RunGang(pipes, n, params, o, mode == "full_sync" ? 1 : repeats,
                              std::min(warmup_job_steps, steps), tag, profile);
        if (!run.status.ok()) {
          std::printf("%-6d %-5d %-20s failed: %s\n", size, n, mode.c_str(), run.status.ToString().c_str());
          std::fflush(stdout);
          continue;
        }
        const double latency = Median(run.seconds);
        if (n == 1) {
          base_latency = latency;
          base = run.last;
        }
        const double speedup = base_latency > 0 ? base_latency / latency : 0;
        const double psnr = n == 1 ? 0 : Psnr(base.image, run.last.image);
        double latent_err = 0;
        if (n > 1 && base.latents.defined()) {
          latent_err = ((run.last.latents - base.latents).norm() / base.latents.norm()).item<double>();
        }
        std::string runs;
        for (double s : run.seconds) runs += (runs.empty() ? "" : ",") + std::to_string(s).substr(0, 6);
        std::printf("%-6d %-5d %-20s %10.3f %8.2f %10.2f %10.1f %8.2f %s  latent_rel_err=%.3g\n", size, n,
                    mode.c_str(), latency, speedup, run.peak_bytes / 1073741824.0, run.stale_bytes / 1048576.0, psnr,
                    runs.c_str(), latent_err);
        for (int phase = 0; phase < 2; ++phase) {
          const auto& g = run.graph_nodes[phase];
          if (g.total == 0) continue;
          std::printf("       graph nodes of rank 0, %s phase: %lld (%lld kernels, %lld memcpy, %lld memset, %lld other)\n",
                      phase == 0 ? "synchronous" : "displaced", static_cast<long long>(g.total),
                      static_cast<long long>(g.kernels), static_cast<long long>(g.memcpy),
                      static_cast<long long>(g.memset), static_cast<long long>(g.other));
        }
        if (run.exchange_chunks > 0) {
          if (peer_exchange) {
            std::printf("       stale exchange of rank 0: %lld chunks a step, copied between the GPUs on the copy "
                        "engines (--peer-exchange)\n",
                        static_cast<long long>(run.exchange_chunks));
          } else {
            std::printf("       stale exchange of rank 0: %lld all-gathers a step, buffers %s\n",
                        static_cast<long long>(run.exchange_chunks),
                        run.window ? "in an NCCL symmetric window" : "from LibTorch's allocator");
          }
        }
        std::fflush(stdout);
        if (out.is_open()) {
          out << "{\"impl\":\"distri\",\"size\":" << size << ",\"gpus\":" << n << ",\"mode\":\"" << mode
              << "\",\"latency_s\":" << latency << ",\"speedup\":" << speedup << ",\"peak_gib\":"
              << run.peak_bytes / 1073741824.0 << ",\"stale_mib\":" << run.stale_bytes / 1048576.0
              << ",\"psnr_db\":" << psnr << ",\"latent_rel_err\":" << latent_err << ",\"graph_nodes\":["
              << run.graph_nodes[0].total << "," << run.graph_nodes[1].total << "],\"exchange_chunks\":"
              << run.exchange_chunks << ",\"window\":" << (run.window ? "true" : "false") << ",\"runs\":[" << runs
              << "],\"args\":\"" << args_text << "\"}\n";
          out.flush();
        }
      }
    }
  }
  // --strip-conv auto: which form each strip shape got on the first GPU, with its timings.
  for (const std::string& line : distri::model::StripConvChoices()) {
    if (line.find("(device 0)") != std::string::npos) std::printf("strip conv %s\n", line.c_str());
  }
  return 0;
}
