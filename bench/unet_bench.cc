// distri's UNet latency benchmark (issue: model core). Times the `steps`-step loop of UNet
// forwards at batch 2 (classifier-free guidance), as bench/unet_diffusers.py does for diffusers
// on the same weights, and prints one JSON line.
//
//   unet_bench --model DIR --height 1024 --width 1024 --steps 50 --dtype fp16 [--graph]
//              [--channels-last] [--repeats 3] [--tuned-gemm]
//
// --graph captures one UNet forward as a CUDA graph and replays it (inputs are static buffers),
// removing per-kernel launch cost.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGraph.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <c10/core/InferenceMode.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "actors/common/torch_util.h"
#include "actors/kernels/gemm_lt.h"
#include "actors/model/blocks/attention_backend.h"
#include "actors/model/blocks/fused_ops.h"
#include "actors/model/blocks/module_loading.h"
#include "actors/model/unet/unet_2d_condition.h"

int main(int argc, char** argv) {
  CLI::App app{"distri UNet benchmark"};
  std::string model, dtype_name = "fp16", variant = "fp16";
  int height = 1024, width = 1024, steps = 50, repeats = 3, batch = 2;
  bool graph = false, channels_last = false, profile = false, cudnn_benchmark = false;
  app.add_option("--model", model, "model folder (its unet/ is loaded)")->required();
  app.add_option("--height", height);
  app.add_option("--width", width);
  app.add_option("--steps", steps);
  app.add_option("--repeats", repeats);
  app.add_option("--batch", batch, "UNet batch (2 = one image with CFG; 1 = one CFG half, as a rank of a CFG-split gang)")
      ->check(CLI::Range(1, 64));
  app.add_option("--dtype", dtype_name);
  app.add_option("--variant", variant);
  app.add_flag("--graph", graph);
  app.add_flag("--channels-last", channels_last);
  app.add_flag("--cudnn-benchmark", cudnn_benchmark, "let cuDNN time its convolution algorithms");
  bool no_fused_add_ln = false;
  app.add_flag("--no-fused-add-layernorm", no_fused_add_ln,
               "run the residual adds and LayerNorms as ATen ops (the fused kernel is the default)");
  bool tuned_gemm = false;
  app.add_flag("--tuned-gemm", tuned_gemm,
               "linear layers through cuBLASLt with algorithms chosen by timing (as DISTRI_TUNED_GEMM=1; "
               "DISTRI_GEMM_TUNE_CACHE=FILE shares the choices between runs)");
  std::string sdpa;
  app.add_option("--sdpa", sdpa, "attention backend: default (LibTorch's dispatcher), cudnn, flash, efficient, "
                                 "or SELF,CROSS (as DISTRI_SDPA_BACKEND)");
  app.add_flag("--profile", profile, "print the GPU kernels' share of one eager forward and exit");
  CLI11_PARSE(app, argc, argv);

  auto dtype = distri::ParseDtype(dtype_name);
  if (!dtype.ok()) return std::fprintf(stderr, "%s\n", dtype.status().ToString().c_str()), 2;
  c10::Device dev(c10::kCUDA, 0);
  auto loaded = distri::model::LoadUNet(model + "/unet", variant, *dtype, dev);
  if (!loaded.ok()) return std::fprintf(stderr, "%s\n", loaded.status().ToString().c_str()), 1;
  distri::model::UNet2DConditionModel unet = *loaded;
  const auto& o = unet->options();
  if (channels_last) distri::model::SetConvWeightFormat(*unet, at::MemoryFormat::ChannelsLast);
  at::globalContext().setBenchmarkCuDNN(cudnn_benchmark);
  if (no_fused_add_ln) distri::model::SetFusedAddLayerNormEnabled(false);
  if (tuned_gemm) distri::model::SetTunedGemmEnabled(true);  // else DISTRI_TUNED_GEMM decides
  if (!sdpa.empty() && !distri::model::SetSdpaBackend(sdpa)) {
    return std::fprintf(stderr, "--sdpa %s: unknown backend (default, cudnn, flash, efficient; or SELF,CROSS)\n", sdpa.c_str()), 2;
  }
  c10::InferenceMode guard;
  auto opts = at::TensorOptions().device(dev).dtype(*dtype);
  at::manual_seed(0);
  const int64_t b = batch, h = height / 8, w = width / 8;
  at::Tensor sample = at::randn({b, o.in_channels, h, w}, opts);
  if (channels_last) sample = sample.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor ehs = at::randn({b, 77, o.cross_attention_dim.empty() ? 2048 : o.cross_attention_dim[0]}, opts);
  std::optional<distri::model::UNetAddedConditions> added;
  if (o.has_text_time()) {
    distri::model::UNetAddedConditions a;
    a.text_embeds = at::randn({b, o.projection_class_embeddings_input_dim - 6 * o.addition_time_embed_dim}, opts);
    a.time_ids = at::tensor({double(height), double(width), 0.0, 0.0, double(height), double(width)}, at::kDouble)
                     .to(opts).unsqueeze(0).repeat({b, 1});
    added = a;
  }
  at::Tensor t = at::scalar_tensor(999.0, at::TensorOptions().device(dev).dtype(at::kFloat));
  at::Tensor out;
  auto forward = [&] { out = unet->forward(sample, t, ehs, added); };

  c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
  c10::cuda::CUDAStreamGuard sg(stream);
  for (int i = 0; i < 3; ++i) forward();
  stream.synchronize();
  std::string sdpa_choice;
  {
    // What the dispatcher picks for the first level's self-attention as the model calls it
    // (q, k, v: strided views of one [B, N, 3 h d] projection).
    const int64_t heads = 10, d = 64, n = h * w;
    at::Tensor qkv = at::empty({b, n, 3 * heads * d}, opts);
    auto view = [&](int i) { return qkv.narrow(2, i * heads * d, heads * d).view({b, n, heads, d}).transpose(1, 2); };
    at::Tensor text = at::empty({b, heads, 77, d}, opts);
    sdpa_choice = distri::model::SdpaChoice(view(0), view(1), view(2)) + "," +
                  distri::model::SdpaChoice(view(0), text, text, /*cross=*/true);
    std::fprintf(stderr, "attention: preference %s, self/cross run on %s for [%ld, %ld, %ld, %ld]\n",
                 distri::model::SdpaBackend().c_str(), sdpa_choice.c_str(), static_cast<long>(b),
                 static_cast<long>(heads), static_cast<long>(n), static_cast<long>(d));
  }
  // The warm-up forwards chose every GEMM's algorithm (TunedLinear times them on first use).
  if (distri::model::TunedGemmEnabled()) {
    std::fprintf(stderr, "tuned GEMM choices (%zu keys):\n%s", distri::kernels::TunedLinearCacheSize(),
                 distri::kernels::TunedLinearReport().c_str());
  }
  if (profile) {
    // Kineto's CUDA activity trace of `steps` eager forwards, summed by kernel name.
    namespace prof = torch::autograd::profiler;
    using torch::profiler::impl::ActivityType;
    prof::ProfilerConfig cfg(prof::ProfilerState::KINETO, /*report_input_shapes=*/true);
    std::set<ActivityType> acts{ActivityType::CPU, ActivityType::CUDA};
    prof::prepareProfiler(cfg, acts);
    prof::enableProfiler(cfg, acts);
    for (int i = 0; i < steps; ++i) forward();
    stream.synchronize();
    auto result = prof::disableProfiler();
    std::map<std::string, int> cpu_ops;  // "aten::add_ [[2,320,128,128],[2,320,1,1]]" -> count
    std::map<std::string, std::pair<double, int>> by_name;
    double total = 0;
    for (const auto& e : result->events()) {
      if (e.deviceType() != c10::DeviceType::CUDA) {
        if (e.name() == "aten::add" || e.name() == "aten::add_" || e.name() == "aten::copy_" ||
            e.name() == "aten::contiguous" || e.name() == "aten::clone") {
          std::string key = e.name() + " [";
          if (e.hasShapes()) {
            for (const auto& sh : e.shapes()) {
              key += "[";
              for (auto d : sh) key += std::to_string(d) + ",";
              key += "]";
            }
          }
          cpu_ops[key + "]"] += 1;
        }
        continue;
      }
      auto& [ms, n] = by_name[e.name().substr(0, 110)];
      ms += e.durationNs() / 1e6 / steps;
      n += 1;
      total += e.durationNs() / 1e6 / steps;
    }
    std::vector<std::pair<double, std::string>> rows;
    for (auto& [name, v] : by_name) rows.push_back({v.first, name + " (x" + std::to_string(v.second / steps) + ")"});
    std::sort(rows.rbegin(), rows.rend());
    for (const auto& [k, n] : cpu_ops) std::printf("op x%d: %s\n", n / steps, k.c_str());
    std::printf("GPU kernel time per forward: %.2f ms\n", total);
    for (size_t i = 0; i < rows.size() && i < 40; ++i) {
      std::printf("%7.2f ms %5.1f%%  %s\n", rows[i].first, 100 * rows[i].first / total, rows[i].second.c_str());
    }
    return 0;
  }
  at::cuda::CUDAGraph cuda_graph(/*keep_graph=*/true);  // kept: its nodes are counted below
  std::function<void()> run = forward;
  size_t graph_nodes = 0;  // each costs a launch gap on replay
  if (graph) {
    cuda_graph.capture_begin();
    forward();
    cuda_graph.capture_end();
    if (cudaGraphGetNodes(cuda_graph.raw_cuda_graph(), nullptr, &graph_nodes) != cudaSuccess) graph_nodes = 0;
    run = [&] { cuda_graph.replay(); };
    run();
    stream.synchronize();
  }
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    stream.synchronize();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) run();
    stream.synchronize();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  double med = times[times.size() / 2];
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  std::printf("{\"impl\": \"distri%s%s%s%s%s%s\", \"batch\": %d, \"height\": %d, \"width\": %d, \"steps\": %d, \"dtype\": \"%s\", "
              "\"loop_s\": %.4f, \"per_forward_ms\": %.2f, \"device_used_gib\": %.2f, \"device\": \"%s\", "
              "\"checksum\": %.6g, \"graph_nodes\": %zu, \"sdpa\": \"%s\"}\n",
              graph ? "+graph" : "", channels_last ? "+cl" : "", cudnn_benchmark ? "+cudnnbench" : "", distri::model::FusedAddLayerNormEnabled() ? "+addln" : "",
              distri::model::PreAddGroupNormEnabled() ? "+preaddgn" : "",
              distri::model::TunedGemmEnabled() ? "+tunedgemm" : "", batch, height, width, steps, dtype_name.c_str(), med,
              1000 * med / steps, (total_b - free_b) / 1073741824.0, prop.name,
              out.to(at::kFloat).abs().mean().item<double>(), graph_nodes, sdpa_choice.c_str());
  return 0;
}
