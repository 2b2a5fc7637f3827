#include "actors/model/blocks/fused_ops.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>

#ifdef DISTRI_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "actors/kernels/fused_kernels.h"
#include "actors/kernels/gemm_lt.h"
#endif

namespace distri::model {
namespace {

bool Eligible(const at::Tensor& x, bool allow_channels_last = false) {
  if (!FusedKernelsEnabled() || !x.is_cuda() || (x.scalar_type() != at::kHalf && x.scalar_type() != at::kBFloat16)) {
    return false;
  }
  return x.is_contiguous() || (allow_channels_last && x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast));
}

#ifdef DISTRI_HAVE_CUDA
// The fused GroupNorm kernels over x [N, C, ...] (checked by the caller) into a new tensor of
// x's memory format; `pre`: terms added as x is read (GroupNormPreAdd).
at::Tensor RunGroupNorm(const at::Tensor& x, int64_t groups, const at::Tensor& weight, const at::Tensor& bias,
                        double eps, bool silu, bool channels_last, const kernels::GroupNormPreAdd& pre = {}) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<int64_t>(n * c, 1);
  at::Tensor y = at::empty_like(x);  // keeps x's memory format
  at::Tensor ws = at::empty({kernels::GroupNormWorkspaceFloats(n, groups, c / groups * hw)},
                            x.options().dtype(at::kFloat));
  auto t = x.scalar_type() == at::kHalf ? kernels::ElemType::kHalf : kernels::ElemType::kBFloat16;
  cudaError_t err = kernels::LaunchGroupNorm(t, x.data_ptr(), weight.data_ptr(), bias.data_ptr(), y.data_ptr(), n, c,
                                             hw, groups, static_cast<float>(eps), silu, channels_last,
                                             ws.data_ptr<float>(), c10::cuda::getCurrentCUDAStream().stream(), pre);
  TORCH_CHECK(err == cudaSuccess, "distri GroupNorm kernel", pre.any() ? " (pre-added terms)" : "", ": ",
              cudaGetErrorString(err));
  return y;
}
#endif

}  // namespace

namespace {
// A switch read from the environment once: a default-on switch is off only for "0", a
// default-off one on only for "1".
bool EnvSwitch(const char* name, bool default_on) {
  const char* e = std::getenv(name);
  if (e == nullptr) return default_on;
  return default_on ? std::strcmp(e, "0") != 0 : std::strcmp(e, "1") == 0;
}
}  // namespace

bool FusedKernelsEnabled() {
#ifdef DISTRI_HAVE_CUDA
  static const bool enabled = !EnvSwitch("DISTRI_DISABLE_FUSED_KERNELS", false);
  return enabled;
#else
  return false;
#endif
}

at::Tensor FusedGroupNorm(const at::Tensor& x, int64_t groups, const at::Tensor& weight, const at::Tensor& bias,
                          double eps, bool silu) {
#ifdef DISTRI_HAVE_CUDA
  if (Eligible(x, /*allow_channels_last=*/true) && x.dim() >= 2 && weight.defined() && bias.defined() && weight.scalar_type() == x.scalar_type() &&
      bias.scalar_type() == x.scalar_type() && weight.is_contiguous() && bias.is_contiguous() &&
      x.size(1) % groups == 0) {
    // A 4-d tensor that is both (C == 1 or H == W == 1) counts as NCHW.
    return RunGroupNorm(x, groups, weight, bias, eps, silu, /*channels_last=*/!x.is_contiguous());
  }
#endif
  at::Tensor y = at::group_norm(x, groups, weight, bias, eps);
  return silu ? at::silu_(y) : y;
}

namespace {
std::atomic<bool>& AddLayerNormFlag() {
  // On by default since its GPU run of 2026-11-27 (docs/perf/unet-sdxl-1024.md);
  // DISTRI_FUSED_ADD_LAYERNORM=0 turns it off (A/B runs).
  static std::atomic<bool> flag{EnvSwitch("DISTRI_FUSED_ADD_LAYERNORM", true)};
  return flag;
}
}  // namespace

bool FusedAddLayerNormEnabled() { return FusedKernelsEnabled() && AddLayerNormFlag().load(); }
void SetFusedAddLayerNormEnabled(bool enabled) { AddLayerNormFlag().store(enabled); }

at::Tensor FusedAddLayerNorm(at::Tensor& sum, const at::Tensor& residual, const at::Tensor& weight,
                             const at::Tensor& bias, double eps) {
#ifdef DISTRI_HAVE_CUDA
  const int64_t c = sum.dim() >= 1 ? sum.size(-1) : 0;
  auto aligned = [](const at::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
  if (FusedAddLayerNormEnabled() && Eligible(sum) && residual.is_contiguous() && residual.sizes().equals(sum.sizes()) &&
      residual.scalar_type() == sum.scalar_type() && residual.device() == sum.device() && weight.defined() &&
      bias.defined() && weight.scalar_type() == sum.scalar_type() && bias.scalar_type() == sum.scalar_type() &&
      weight.is_contiguous() && bias.is_contiguous() && weight.numel() == c && bias.numel() == c &&
      kernels::AddLayerNormSupports(c) && aligned(sum) && aligned(residual) && aligned(weight) && aligned(bias)) {
    at::Tensor y = at::empty_like(sum);
    auto t = sum.scalar_type() == at::kHalf ? kernels::ElemType::kHalf : kernels::ElemType::kBFloat16;
    cudaError_t err = kernels::LaunchAddLayerNorm(t, sum.data_ptr(), residual.data_ptr(), weight.data_ptr(),
                                                  bias.data_ptr(), y.data_ptr(), sum.numel() / c, c,
                                                  static_cast<float>(eps), c10::cuda::getCurrentCUDAStream().stream());
    TORCH_CHECK(err == cudaSuccess, "distri add+LayerNorm kernel: ", cudaGetErrorString(err));
    return y;
  }
#endif
  sum.add_(residual);
  return at::layer_norm(sum, {sum.size(-1)}, weight, bias, eps);
}

namespace {
std::atomic<bool>& PreAddFlag() {
  static std::atomic<bool> flag{EnvSwitch("DISTRI_FUSED_PREADD_GROUPNORM", true)};
  return flag;
}

// Channels-last in memory and not also plain contiguous (FusedGroupNorm counts a tensor that is
// both, C == 1 or H == W == 1, as NCHW).
bool StrictlyChannelsLast(const at::Tensor& t) {
  return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}
}  // namespace

bool PreAddGroupNormEnabled() { return FusedKernelsEnabled() && PreAddFlag().load(); }
void SetPreAddGroupNormEnabled(bool enabled) { PreAddFlag().store(enabled); }

bool PreAddGroupNormEligible(const at::Tensor& x, int64_t channels) {
  return PreAddGroupNormEnabled() && Eligible(x, /*allow_channels_last=*/true) && StrictlyChannelsLast(x) &&
         channels % 8 == 0 && channels <= 4096;
}

at::Tensor FusedPreAddGroupNorm(const at::Tensor& y, const at::Tensor& add_bias, const at::Tensor& add_extra,
                                int64_t groups, const at::Tensor& weight, const at::Tensor& bias, double eps,
                                bool silu) {
#ifdef DISTRI_HAVE_CUDA
  if (!PreAddGroupNormEnabled() || !Eligible(y, /*allow_channels_last=*/true) || !StrictlyChannelsLast(y)) return {};
  const int64_t n = y.size(0), c = y.size(1);
  auto same = [&](const at::Tensor& t, int64_t numel) {
    return t.scalar_type() == y.scalar_type() && t.device() == y.device() && t.is_contiguous() && t.numel() == numel;
  };
  if (groups <= 0 || c % groups != 0 || !weight.defined() || !bias.defined() || !same(weight, c) || !same(bias, c) ||
      (add_bias.defined() && !same(add_bias, c)) || (add_extra.defined() && !same(add_extra, n * c))) {
    return {};
  }
  kernels::GroupNormPreAdd pre;
  pre.bias = add_bias.defined() ? add_bias.data_ptr() : nullptr;
  pre.extra = add_extra.defined() ? add_extra.data_ptr() : nullptr;
  if (!kernels::GroupNormPreAddSupports(y.data_ptr(), c, /*channels_last=*/true, pre)) return {};
  return RunGroupNorm(y, groups, weight, bias, eps, silu, /*channels_last=*/true, pre);
#else
  (void)y, (void)add_bias, (void)add_extra, (void)groups, (void)weight, (void)bias, (void)eps, (void)silu;
  return {};
#endif
}

at::Tensor FusedGeglu(const at::Tensor& p) {
#ifdef DISTRI_HAVE_CUDA
  if (Eligible(p) && p.dim() >= 1 && p.size(-1) % 2 == 0) {
    const int64_t d = p.size(-1) / 2, rows = p.numel() / std::max<int64_t>(p.size(-1), 1);
    std::vector<int64_t> shape = p.sizes().vec();
    shape.back() = d;
    at::Tensor out = at::empty(shape, p.options());
    auto t = p.scalar_type() == at::kHalf ? kernels::ElemType::kHalf : kernels::ElemType::kBFloat16;
    cudaError_t err = kernels::LaunchGeglu(t, p.data_ptr(), out.data_ptr(), rows, d,
                                           c10::cuda::getCurrentCUDAStream().stream());
    TORCH_CHECK(err == cudaSuccess, "distri GEGLU kernel: ", cudaGetErrorString(err));
    return out;
  }
#endif
  auto halves = p.chunk(2, -1);
  // gelu() allocates a fresh tensor, so the product can be taken in place.
  return at::gelu(halves[1]).mul_(halves[0]);
}

at::Tensor FusedConvAdd(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                        int64_t padding, const at::Tensor& extra) {
  return FusedConvAdd(x, weight, bias, stride, padding, padding, extra);
}

namespace {
// Whether a convolution of `t` (its input or output: same device, dtype and layout kind) runs
// without its bias, which the bias-add kernel then adds: CUDA fp16/bf16, 4-d, contiguous or
// channels-last, a bias of t's dtype or none.
bool BiasAddApplies(const at::Tensor& t, const at::Tensor& bias) {
  return Eligible(t, /*allow_channels_last=*/true) && t.dim() == 4 &&
         (!bias.defined() || bias.scalar_type() == t.scalar_type());
}

// y (a convolution's output without its bias) + bias + extra, in place: the bias-add kernel
// where it applies (see FusedConvAdd), ATen's adds otherwise.
at::Tensor AddBiasExtra(at::Tensor y, const at::Tensor& bias, const at::Tensor& extra) {
#ifdef DISTRI_HAVE_CUDA
  if (BiasAddApplies(y, bias)) {
    const int64_t n = y.size(0), c = y.size(1), hw = y.size(2) * y.size(3);
    const bool cl = !y.is_contiguous() && y.is_contiguous(at::MemoryFormat::ChannelsLast);
    int kind = 0;
    if (extra.defined()) {
      if (extra.sizes().equals({n, c, 1, 1}) && extra.is_contiguous()) kind = 1;
      else if (extra.sizes().equals(y.sizes()) && extra.strides().equals(y.strides())) kind = 2;
      else kind = -1;
    }
    const bool aligned = reinterpret_cast<uintptr_t>(y.data_ptr()) % 16 == 0 &&
                         (kind != 2 || reinterpret_cast<uintptr_t>(extra.data_ptr()) % 16 == 0);
    if (kind >= 0 && (y.is_contiguous() || cl) && aligned && (cl ? c % 8 == 0 : hw % 8 == 0) &&
        (kind == 0 || extra.scalar_type() == y.scalar_type())) {
      auto t = y.scalar_type() == at::kHalf ? kernels::ElemType::kHalf : kernels::ElemType::kBFloat16;
      cudaError_t err = kernels::LaunchBiasAdd(t, y.data_ptr(), bias.defined() ? bias.data_ptr() : nullptr,
                                               kind > 0 ? extra.data_ptr() : nullptr, kind, n, c, hw, cl,
                                               c10::cuda::getCurrentCUDAStream().stream());
      TORCH_CHECK(err == cudaSuccess, "distri bias-add kernel: ", cudaGetErrorString(err));
      return y;
    }
  }
#endif
  if (bias.defined()) y.add_(bias.view({1, -1, 1, 1}));
  return extra.defined() ? y.add_(extra) : y;
}
}  // namespace

at::Tensor FusedConvAdd(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                        int64_t padding_h, int64_t padding_w, const at::Tensor& extra) {
#ifdef DISTRI_HAVE_CUDA
  if (BiasAddApplies(x, bias)) {
    return AddBiasExtra(at::conv2d(x, weight, {}, {stride, stride}, {padding_h, padding_w}), bias, extra);
  }
#endif
  at::Tensor y = at::conv2d(x, weight, bias, {stride, stride}, {padding_h, padding_w});
  return extra.defined() ? y.add_(extra) : y;
}

namespace {
std::atomic<bool>& ConvBiasFlag() {
  static std::atomic<bool> flag{EnvSwitch("DISTRI_FUSED_CONV_BIAS", true)};
  return flag;
}
}  // namespace

bool FusedConvBiasEnabled() { return FusedKernelsEnabled() && ConvBiasFlag().load(); }
void SetFusedConvBiasEnabled(bool enabled) { ConvBiasFlag().store(enabled); }

namespace {
std::atomic<bool>& TunedGemmFlag() {
  static std::atomic<bool> flag{EnvSwitch("DISTRI_TUNED_GEMM", false)};
  return flag;
}
}  // namespace

bool TunedGemmEnabled() { return FusedKernelsEnabled() && TunedGemmFlag().load(); }
void SetTunedGemmEnabled(bool enabled) { TunedGemmFlag().store(enabled); }

at::Tensor TunedLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                       const at::Tensor& residual) {
#ifdef DISTRI_HAVE_CUDA
  auto aligned = [](const at::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
  auto same = [&](const at::Tensor& t) { return t.scalar_type() == x.scalar_type() && t.device() == x.device(); };
  if (TunedGemmEnabled() && Eligible(x) && x.dim() >= 1 && weight.dim() == 2 && same(weight) &&
      weight.is_contiguous() && weight.size(1) == x.size(-1) && x.numel() > 0 && weight.size(0) > 0 &&
      x.size(-1) % 8 == 0 && weight.size(0) % 8 == 0 && aligned(x) && aligned(weight) &&
      (!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0) && same(bias) && bias.is_contiguous() &&
                           aligned(bias)))) {
    const int64_t k = x.size(-1), n = weight.size(0), m = x.numel() / k;
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = n;
    const bool fuse_residual = residual.defined() && residual.sizes().equals(shape) && same(residual) &&
                               residual.is_contiguous() && aligned(residual);
    if (!residual.defined() || fuse_residual) {
      c10::cuda::CUDAGuard device_guard(x.device());
      const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
      at::Tensor y = at::empty(shape, x.options());
      // From the caching allocator on the current stream: stream-ordered, and valid in a CUDA
      // graph capture (the graph's private pool keeps it).
      at::Tensor ws =
          at::empty({static_cast<int64_t>(kernels::kTunedLinearWorkspaceBytes)}, x.options().dtype(at::kByte));
      auto t = x.scalar_type() == at::kHalf ? kernels::ElemType::kHalf : kernels::ElemType::kBFloat16;
      cudaError_t err = kernels::LaunchTunedLinear(t, x.data_ptr(), weight.data_ptr(),
                                                   bias.defined() ? bias.data_ptr() : nullptr,
                                                   fuse_residual ? residual.data_ptr() : nullptr, y.data_ptr(), m, n,
                                                   k, ws.data_ptr(), ws.numel(), stream);
      if (err == cudaSuccess) return y;
      // No cuBLASLt algorithm for this problem: ATen below. Anything else is a real failure.
      TORCH_CHECK(err == cudaErrorNotSupported, "distri tuned GEMM (", m, "x", n, "x", k,
                  "): ", kernels::TunedLinearLastError());
    }
  }
#endif
  at::Tensor y = at::linear(x, weight, bias);
  return residual.defined() ? y.add_(residual) : y;
}

const char* StripConvFormName(StripConvForm form) {
  switch (form) {
    case StripConvForm::kAuto: return "auto";
    case StripConvForm::kHalo: return "halo";
    case StripConvForm::kSeam: return "seam";
    case StripConvForm::kWide: return "wide";
  }
  return "?";
}

bool ParseStripConvForm(const std::string& name, StripConvForm* form) {
  for (StripConvForm f : {StripConvForm::kAuto, StripConvForm::kHalo, StripConvForm::kSeam, StripConvForm::kWide}) {
    if (name == StripConvFormName(f)) {
      *form = f;
      return true;
    }
  }
  return false;
}

bool StripFormEligible(const at::Tensor& padded, const at::Tensor& weight, int64_t stride) {
  return stride == 1 && padded.dim() == 4 && padded.size(0) == 1 && padded.size(2) >= 4 && weight.dim() == 4 &&
         weight.size(2) == 3 && weight.size(3) == 3 && padded.is_contiguous(at::MemoryFormat::ChannelsLast);
}

namespace {
// The strip forms' convolutions (bias `b` or undefined), before any addend: kSeam and kWide.
at::Tensor SeamConv(const at::Tensor& padded, const at::Tensor& weight, const at::Tensor& b) {
  const int64_t rows = padded.size(2) - 2;
  at::Tensor y = at::conv2d(padded.narrow(2, 1, rows), weight, b, at::IntArrayRef{1, 1}, at::IntArrayRef{1, 1});
  // Rows 0 and rows - 1 saw zeros where the halo is: again from halo + two strip rows.
  y.narrow(2, 0, 1).copy_(at::conv2d(padded.narrow(2, 0, 3), weight, b, at::IntArrayRef{1, 1}, at::IntArrayRef{0, 1}));
  y.narrow(2, rows - 1, 1)
      .copy_(at::conv2d(padded.narrow(2, rows - 1, 3), weight, b, at::IntArrayRef{1, 1}, at::IntArrayRef{0, 1}));
  return y;
}

at::Tensor WideConv(const at::Tensor& padded, const at::Tensor& weight, const at::Tensor& b) {
  // Output rows 0 and rows + 1 saw the zero padding: dropped; rows 1..rows are conv(padded)
  // with padding (0, 1).
  return at::conv2d(padded, weight, b, at::IntArrayRef{1, 1}, at::IntArrayRef{1, 1}).narrow(2, 1, padded.size(2) - 2);
}

// conv(padded) + bias + extra with `conv` one of the forms above: the bias and extra through
// the bias-add kernel where it applies (the convolution then runs without the bias).
at::Tensor StripFormConvAdd(const char* what, at::Tensor (*conv)(const at::Tensor&, const at::Tensor&, const at::Tensor&),
                            const at::Tensor& padded, const at::Tensor& weight, const at::Tensor& bias,
                            const at::Tensor& extra) {
  TORCH_CHECK(StripFormEligible(padded, weight, 1), what, ": needs a [1, C, rows + 2 >= 4, W] channels-last strip "
              "and a 3x3 weight, got ", padded.sizes(), " and ", weight.sizes());
  const bool fused = FusedConvBiasEnabled() && BiasAddApplies(padded, bias);
  at::Tensor y = conv(padded, weight, fused ? at::Tensor() : bias);
  if (fused) return AddBiasExtra(std::move(y), bias, extra);
  return extra.defined() ? y.add_(extra) : y;
}
}  // namespace

at::Tensor SeamConvAdd(const at::Tensor& padded, const at::Tensor& weight, const at::Tensor& bias,
                       const at::Tensor& extra) {
  return StripFormConvAdd("SeamConvAdd", SeamConv, padded, weight, bias, extra);
}

at::Tensor WideConvAdd(const at::Tensor& padded, const at::Tensor& weight, const at::Tensor& bias,
                       const at::Tensor& extra) {
  return StripFormConvAdd("WideConvAdd", WideConv, padded, weight, bias, extra);
}

namespace {
struct StripConvChoice {
  StripConvForm form;
  double halo_ms, seam_ms, wide_ms;
};
std::mutex& StripConvMutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, StripConvChoice>& StripConvTable() {
  static std::map<std::string, StripConvChoice> table;
  return table;
}
}  // namespace

StripConvForm ResolveStripConvForm(StripConvForm form, const at::Tensor& padded, const at::Tensor& weight,
                                   int64_t stride) {
  if (form == StripConvForm::kHalo || !StripFormEligible(padded, weight, stride)) return StripConvForm::kHalo;
  if (form != StripConvForm::kAuto) return form;
#ifdef DISTRI_HAVE_CUDA
  if (!padded.is_cuda()) return StripConvForm::kHalo;
  const std::string key = std::string(c10::toString(padded.scalar_type())) + " " + std::to_string(weight.size(1)) +
                          "->" + std::to_string(weight.size(0)) + " " + std::to_string(padded.size(2) - 2) + "x" +
                          std::to_string(padded.size(3)) + " (device " + std::to_string(padded.get_device()) + ")";
  {
    std::lock_guard<std::mutex> lock(StripConvMutex());
    auto it = StripConvTable().find(key);
    if (it != StripConvTable().end()) return it->second.form;
  }
  c10::cuda::CUDAGuard guard(padded.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone) {
    return StripConvForm::kHalo;  // no timing inside a capture; an eager run will choose
  }
  // The convolutions alone (the bias pass is the same for every form): two warm-up calls each
  // (algorithm choice, workspace), then 3 rounds of 3 calls each, alternating; the best round.
  auto halo = [&] { (void)at::conv2d(padded, weight, {}, at::IntArrayRef{1, 1}, at::IntArrayRef{0, 1}); };
  auto seam = [&] { (void)SeamConv(padded, weight, {}); };
  auto wide = [&] { (void)WideConv(padded, weight, {}); };
  cudaEvent_t start = nullptr, stop = nullptr;
  const bool events = cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess;
  if (!events) {
    if (start != nullptr) cudaEventDestroy(start);
    TORCH_CHECK(false, "strip convolution timing: cudaEventCreate failed");
  }
  auto time_ms = [&](const std::function<void()>& fn) {
    cudaEventRecord(start, stream);
    for (int i = 0; i < 3; ++i) fn();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    return static_cast<double>(ms) / 3;
  };
  for (int i = 0; i < 2; ++i) {
    halo();
    seam();
    wide();
  }
  double halo_ms = 1e30, seam_ms = 1e30, wide_ms = 1e30;
  for (int round = 0; round < 3; ++round) {
    halo_ms = std::min(halo_ms, time_ms(halo));
    seam_ms = std::min(seam_ms, time_ms(seam));
    wide_ms = std::min(wide_ms, time_ms(wide));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  // Another form only where it is clearly faster (3%): timing noise must not flip a tie.
  StripConvForm chosen = StripConvForm::kHalo;
  double best = 0.97 * halo_ms;
  if (wide_ms < best) chosen = StripConvForm::kWide, best = wide_ms;
  if (seam_ms < best) chosen = StripConvForm::kSeam;
  std::lock_guard<std::mutex> lock(StripConvMutex());
  return StripConvTable().emplace(key, StripConvChoice{chosen, halo_ms, seam_ms, wide_ms}).first->second.form;
#else
  (void)padded;
  return StripConvForm::kHalo;
#endif
}

std::vector<std::string> StripConvChoices() {
  std::lock_guard<std::mutex> lock(StripConvMutex());
  std::vector<std::string> lines;
  for (const auto& [key, c] : StripConvTable()) {
    char buf[128];
    std::snprintf(buf, sizeof(buf), ": halo %.4f ms, seam %.4f ms, wide %.4f ms -> %s", c.halo_ms, c.seam_ms,
                  c.wide_ms, StripConvFormName(c.form));
    lines.push_back(key + buf);
  }
  return lines;
}

}  // namespace distri::model
