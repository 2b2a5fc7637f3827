// Where a patch-parallel rank's 3x3 convolutions lose time (docs/perf/parallel-sdxl.md: at
// 2048 px on 4 GPUs a rank's convolutions took 40% more than a quarter of one GPU's).
//
//   conv_strip_bench [--sizes 1024,2048] [--strips 2] [--iters 50] [--device 0]
//
// For SDXL's 3x3 convolution shapes at each image size, fp16, channels-last, on one GPU, the
// time of one convolution (no bias: distri adds biases in its own kernel), median of rounds:
//   one_gpu/4      the one-GPU job's convolution (batch 2: CFG; whole latent; padding 1 all
//                  round), divided by 4: what a rank of a 4-GPU gang (2 CFG groups x 2 strips)
//                  would take at perfect scaling
//   strip_halo     what a rank runs now: batch 1, its strip of rows plus one halo row above and
//                  below, padding (0, 1)
//   strip_plain    batch 1, the strip's rows alone, padding (1, 1) (wrong at the seams; same
//                  work): whether the halo's shape or the asymmetric padding costs
//   strip_padded   batch 1, strip + halo rows and one zero column left and right, padding 0
//   strip_wide     strip + halo rows with padding (1, 1): two output rows too many (thrown
//                  away), symmetric padding (model::StripConvForm::kWide)
// (cuDNN's timed algorithm choice, benchmark mode, was a column until 2026-11-28: no faster,
// and unusable in jobs.)
// and the sum over the UNet's convolutions of one step (each shape times its count), for
// one_gpu/4 and each strip variant.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct ConvShape {
  int64_t cin, cout, level;  // level: the latent is divided by 2^level
  int count;                 // how many such convolutions one SDXL UNet forward runs
};

// SDXL's UNet (block_out_channels 320/640/1280, 2 ResNets down and 3 up per level): the 3x3
// stride-1 convolutions by shape. Down: level 0 2x(320->320) ResNets, level 1 320->640 then
// 640->640, level 2 640->1280 then 1280->1280; mid 2 ResNets at 1280; up: 3 ResNets per level
// on concatenated skips, then the upsampler's convolution at the next finer level; conv_in
// (4->320), conv_out (320->4), the stride-2 downsamplers and 1x1 shortcuts left out.
const std::vector<ConvShape>& SdxlConvs() {
  static const std::vector<ConvShape> shapes = {
      {320, 320, 0, 4 + 0},        // down level 0: 2 ResNets x 2 convs
      {320, 640, 1, 1},  {640, 640, 1, 3},     // down level 1
      {640, 1280, 2, 1}, {1280, 1280, 2, 3 + 4},  // down level 2 + mid (2 ResNets)
      {2560, 1280, 2, 2}, {1920, 1280, 2, 1}, {1280, 1280, 2, 3},  // up level 2
      {1280, 1280, 1, 1},                                          // its upsampler, at level 1
      {1920, 640, 1, 1},  {1280, 640, 1, 1},  {960, 640, 1, 1},  {640, 640, 1, 3},  // up level 1
      {640, 640, 0, 1},                                            // its upsampler, at level 0
      {960, 320, 0, 1},   {640, 320, 0, 2},   {320, 320, 0, 3},  // up level 0
  };
  return shapes;
}

// Median milliseconds of `fn` over `rounds` rounds of `iters` calls each (CUDA events).
double TimeMs(const std::function<void()>& fn, int iters, int rounds = 5) {
  for (int i = 0; i < 3; ++i) fn();  // algorithm choice, workspace, caches
  cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<double> ms;
  for (int r = 0; r < rounds; ++r) {
    cudaEventRecord(start, stream);
    for (int i = 0; i < iters; ++i) fn();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    ms.push_back(static_cast<double>(t) / iters);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

at::Tensor Input(int64_t batch, int64_t c, int64_t h, int64_t w, const at::TensorOptions& o) {
  return at::randn({batch, c, h, w}, o).contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"3x3 convolutions of a patch-parallel rank against a quarter of one GPU's"};
  std::string sizes_arg = "1024,2048";
  int strips = 2, iters = 50, device = 0;
  app.add_option("--sizes", sizes_arg, "Image sizes in px (latent = size / 8)");
  app.add_option("--strips", strips, "Strips per CFG group (a 4-GPU gang: 2)")->check(CLI::Range(1, 16));
  app.add_option("--iters", iters, "Calls per timed round")->check(CLI::Range(1, 10000));
  app.add_option("--device", device, "CUDA device");
  CLI11_PARSE(app, argc, argv);
  std::vector<int64_t> sizes;
  {
    std::stringstream ss(sizes_arg);
    for (std::string item; std::getline(ss, item, ',');) {
      try {
        sizes.push_back(std::stoll(item));
      } catch (const std::exception&) {
        std::fprintf(stderr, "conv_strip_bench: --sizes: '%s' is not a number\n", item.c_str());
        return 2;
      }
      if (sizes.back() <= 0 || sizes.back() % (8 * 4 * strips) != 0) {
        std::fprintf(stderr, "conv_strip_bench: --sizes: %lld px must be a positive multiple of %d (8 px a latent row, "
                     "4 latent rows at the coarsest level, %d strips)\n",
                     static_cast<long long>(sizes.back()), 8 * 4 * strips, strips);
        return 2;
      }
    }
  }
  if (!at::hasCUDA()) {
    std::fprintf(stderr, "conv_strip_bench: needs a CUDA device\n");
    return 1;
  }
  if (device < 0 || device >= static_cast<int>(at::getNumGPUs())) {
    std::fprintf(stderr, "conv_strip_bench: --device %d: %d GPU(s) visible\n", device, static_cast<int>(at::getNumGPUs()));
    return 2;
  }
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  at::InferenceMode inference;
  const auto o = at::TensorOptions().device(at::kCUDA, device).dtype(at::kHalf);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, device);
  std::printf("conv_strip_bench: %s, fp16 channels-last, %d strips per CFG group, ms per convolution (median)\n",
              prop.name, strips);
  std::printf("%-5s %-16s %-11s %5s %10s %10s %10s %10s %10s\n", "size", "cin->cout", "latent", "count", "one_gpu/4",
              "strip_halo", "strip_plain", "strip_pad", "strip_wide");
  for (int64_t size : sizes) {
    double total[5] = {0, 0, 0, 0, 0};
    for (const ConvShape& s : SdxlConvs()) {
      const int64_t h = size / 8 >> s.level, w = h, rows = h / strips;
      at::Tensor weight = (at::randn({s.cout, s.cin, 3, 3}, o) * 0.02).contiguous(at::MemoryFormat::ChannelsLast);
      at::Tensor full = Input(2, s.cin, h, w, o);
      at::Tensor halo = Input(1, s.cin, rows + 2, w, o);
      at::Tensor plain = Input(1, s.cin, rows, w, o);
      at::Tensor padded = Input(1, s.cin, rows + 2, w + 2, o);
      at::globalContext().setBenchmarkCuDNN(false);
      double t[5];
      t[0] = TimeMs([&] { (void)at::conv2d(full, weight, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{1, 1}); }, iters) / 4;
      t[1] = TimeMs([&] { (void)at::conv2d(halo, weight, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 1}); }, iters);
      t[2] = TimeMs([&] { (void)at::conv2d(plain, weight, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{1, 1}); }, iters);
      t[3] = TimeMs([&] { (void)at::conv2d(padded, weight, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}); }, iters);
      t[4] = TimeMs([&] { (void)at::conv2d(halo, weight, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{1, 1}); }, iters);
      for (int i = 0; i < 5; ++i) total[i] += t[i] * s.count;
      std::printf("%-5lld %5lld->%-9lld %4lldx%-6lld %5d %10.4f %10.4f %10.4f %10.4f %10.4f\n",
                  static_cast<long long>(size), static_cast<long long>(s.cin), static_cast<long long>(s.cout),
                  static_cast<long long>(rows), static_cast<long long>(w), s.count, t[0], t[1], t[2], t[3], t[4]);
      std::fflush(stdout);
    }
    std::printf("%-5lld %-16s %-11s %5s %10.3f %10.3f %10.3f %10.3f %10.3f  (ms a UNet forward; x%.2f x%.2f x%.2f "
                "x%.2f of one_gpu/4)\n",
                static_cast<long long>(size), "all", "", "", total[0], total[1], total[2], total[3], total[4],
                total[1] / total[0], total[2] / total[0], total[3] / total[0], total[4] / total[0]);
  }
  return 0;
}
