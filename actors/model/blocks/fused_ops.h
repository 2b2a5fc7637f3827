// Fused versions of the UNet's memory-bound steps, with exact ATen fallbacks.
//
// On CUDA tensors of fp16/bf16 (contiguous, the usual case in a GPU actor) these run distri's
// kernels (actors/kernels); everywhere else (CPU, fp32, odd layouts, builds without CUDA) they
// run the ATen ops diffusers uses, so CPU parity tests see exactly diffusers' arithmetic.
// DISTRI_DISABLE_FUSED_KERNELS=1 forces the fallbacks (for A/B checks and benchmarks).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace distri::model {

// GroupNorm(x) (then SiLU when `silu`), x [N, C, ...], affine weight/bias [C].
at::Tensor FusedGroupNorm(const at::Tensor& x, int64_t groups, const at::Tensor& weight, const at::Tensor& bias,
                          double eps, bool silu);

// GroupNorm(y + add_bias[C] + add_extra[N, C, 1, 1]) (then SiLU when `silu`) without storing the
// sum: a ResNet block's conv1 bias and time embedding, read by norm2 (one pass over the
// activation less). Bit-identical to FusedConvAdd's sum followed by FusedGroupNorm. Returns an
// undefined tensor where it does not apply (PreAddGroupNormEligible false, or odd pointers):
// the caller then adds and normalises itself. On while PreAddGroupNormEnabled()
// (DISTRI_FUSED_PREADD_GROUPNORM=0 or SetPreAddGroupNormEnabled(false) turn it off).
at::Tensor FusedPreAddGroupNorm(const at::Tensor& y, const at::Tensor& add_bias, const at::Tensor& add_extra,
                                int64_t groups, const at::Tensor& weight, const at::Tensor& bias, double eps, bool silu);
// Whether FusedPreAddGroupNorm can take the output of a same-size convolution of `x` with
// `channels` output channels (CUDA, fp16/bf16, channels-last, channels % 8 == 0), checked before
// the convolution runs without its bias.
bool PreAddGroupNormEligible(const at::Tensor& x, int64_t channels);
bool PreAddGroupNormEnabled();
void SetPreAddGroupNormEnabled(bool enabled);

// GEGLU's activation: for p = [..., 2d], returns p[..., :d] * gelu(p[..., d:]) (erf GELU).
at::Tensor FusedGeglu(const at::Tensor& projected);

// conv(x) + extra, where `extra` is [N, C, 1, 1] (a time embedding), y's full shape (a
// residual) or undefined: the convolution runs without its bias, which is added in the same
// pass as `extra`. Falls back to at::conv2d(x, w, b) + extra.
at::Tensor FusedConvAdd(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                        int64_t padding, const at::Tensor& extra);
// The same with the vertical and horizontal padding apart (a patch's strip that already holds
// its halo rows: padding (0, 1)).
at::Tensor FusedConvAdd(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                        int64_t padding_h, int64_t padding_w, const at::Tensor& extra);
// Whether every convolution with a bias adds it with the vectorized bias-add kernel (a
// convolution without bias, then FusedConvAdd's pass; bit-identical to at::conv2d's own
// broadcast add, which is a slow generic kernel on channels-last tensors) and the patch
// contexts fold time embeddings and residuals into that pass too. On by default;
// DISTRI_FUSED_CONV_BIAS=0 or SetFusedConvBiasEnabled(false) turn it off (A/B runs).
bool FusedConvBiasEnabled();
void SetFusedConvBiasEnabled(bool enabled);

// The residual add and the LayerNorm that follows it: adds `residual` into `sum` in place and
// returns layer_norm(sum) over the last dimension (weight/bias [C], eps). The fused kernel
// (actors/kernels/add_layer_norm.cu) runs while FusedAddLayerNormEnabled() (on by default, as
// measured on an H100: -3% a batch-2 SDXL forward; DISTRI_FUSED_ADD_LAYERNORM=0 or
// SetFusedAddLayerNormEnabled(false) turn it off); otherwise `sum.add_(residual)` then
// at::layer_norm.
at::Tensor FusedAddLayerNorm(at::Tensor& sum, const at::Tensor& residual, const at::Tensor& weight,
                             const at::Tensor& bias, double eps);
bool FusedAddLayerNormEnabled();
void SetFusedAddLayerNormEnabled(bool enabled);

// y = x W^T + b (+ residual): at::linear's contract (x [..., K], weight [N, K], bias [N] or
// undefined, y [..., N]), plus `residual` (y's shape, or undefined) added to the product in the
// same pass. While TunedGemmEnabled() and the tensors qualify (CUDA, fp16/bf16, x and weight
// contiguous, K and N multiples of 8, 16-byte aligned, residual of y's shape and contiguous),
// this runs actors/kernels/gemm_lt.h (cuBLASLt with an algorithm chosen by timing, bias and
// residual in the GEMM epilogue; the first call of each shape synchronises the stream to time
// candidates, unless capturing a CUDA graph). Otherwise: at::linear(x, weight, bias), then
// `.add_(residual)` - exactly the ATen ops used before.
at::Tensor TunedLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                       const at::Tensor& residual = {});
// Off by default until measured on GPUs: DISTRI_TUNED_GEMM=1 (read once) or SetTunedGemmEnabled
// turn it on; DISTRI_DISABLE_FUSED_KERNELS=1 keeps it off. While on, the transformer blocks put
// their residual adds into the output projections' GEMMs (BasicTransformerBlock::ForwardChained)
// and so no longer use FusedAddLayerNorm.
bool TunedGemmEnabled();
void SetTunedGemmEnabled(bool enabled);

// Whether the fused kernels can run in this build and process.
bool FusedKernelsEnabled();

// How a patch-parallel rank runs a 3x3, stride-1 convolution over its strip with its halo rows,
// `padded` = [1, C, rows + 2, W] (halo row, strip rows, halo row; channels-last), i.e.
// conv(padded) with padding (0, 1). cuDNN's heuristics pick very different kernels for these
// shapes (bench/conv_strip_bench on an H200 at 2048 px, level 2: the strip's rows alone with
// padding (1, 1) take half the time of strip + halo with padding (0, 1)), so:
//   kHalo  that one convolution.
//   kSeam  the strip's rows alone with padding (1, 1), then the first and the last output rows
//          again, each from its three input rows with padding (0, 1), copied over the rows the
//          zero padding got wrong.
//   kWide  conv(padded) with padding (1, 1): rows + 2 output rows, of which the first and the
//          last (computed from the zero padding) are dropped; the result is a view of rows
//          1..rows (contiguous: batch 1, channels-last). Two rows of extra work, symmetric
//          padding.
//   kAuto  on CUDA: time the forms that apply once per shape, dtype and device (a few eager
//          runs, the first time a shape is seen outside a CUDA graph capture; during a capture,
//          kHalo without caching) and keep the fastest for the process (another form only
//          where it beats kHalo by 3%); elsewhere kHalo. Results can differ from run to run in
//          the last bits; pick a form to reproduce bits.
// kSeam and kWide give kHalo's values, not its bits (other kernels).
enum class StripConvForm { kAuto, kHalo, kSeam, kWide };
const char* StripConvFormName(StripConvForm form);
// "auto", "halo", "seam" or "wide"; false for anything else.
bool ParseStripConvForm(const std::string& name, StripConvForm* form);
// Whether kSeam and kWide can run on `padded`: 4-d, batch 1, channels-last (the row views are
// then contiguous), at least 2 strip rows (4 padded rows), a 3x3 stride-1 weight.
bool StripFormEligible(const at::Tensor& padded, const at::Tensor& weight, int64_t stride);
// kHalo, kSeam or kWide for this convolution (kAuto resolved as above; kSeam and kWide only
// where eligible).
StripConvForm ResolveStripConvForm(StripConvForm form, const at::Tensor& padded, const at::Tensor& weight,
                                   int64_t stride);
// conv(padded, padding (0, 1)) + bias + extra in kSeam's or kWide's form (StripFormEligible must
// hold); bias and extra as FusedConvAdd (one bias-add pass where FusedConvBiasEnabled()).
at::Tensor SeamConvAdd(const at::Tensor& padded, const at::Tensor& weight, const at::Tensor& bias,
                       const at::Tensor& extra);
at::Tensor WideConvAdd(const at::Tensor& padded, const at::Tensor& weight, const at::Tensor& bias,
                       const at::Tensor& extra);
// kAuto's timings so far, one line per shape: "dtype cin->cout rowsxW (device d): halo A ms,
// seam B ms, wide C ms -> form" (for benchmarks' logs).
std::vector<std::string> StripConvChoices();

}  // namespace distri::model
