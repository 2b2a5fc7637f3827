// Fused CUDA kernels for the UNet's memory-bound steps (no LibTorch here: raw pointers and a
// stream). Called through actors/model/blocks/fused_ops.h, which checks shapes and falls back
// to ATen where a kernel does not apply.
//
// Element types: kHalf (IEEE fp16) and kBFloat16; all arithmetic is in fp32.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace distri::kernels {

enum class ElemType { kHalf, kBFloat16 };

// out[r, j] = in[r, j] * gelu(in[r, d + j]) for r < rows, j < d (GEGLU: the projection's first
// half times the exact (erf) GELU of its second half). in: [rows, 2d], out: [rows, d], contiguous.
cudaError_t LaunchGeglu(ElemType t, const void* in, void* out, int64_t rows, int64_t d, cudaStream_t stream);

// The residual add and the LayerNorm after it, in one pass (transformer blocks:
// h = sublayer(x) + h; next = LayerNorm(h)): a[r, :] += b[r, :] (in place, rounded to the
// element type), then y[r, :] = LayerNorm(a[r, :]) * weight + bias over the last dimension c.
// a, b, y: [rows, c] contiguous, 16-byte aligned; weight, bias: [c]. c % 8 == 0 and
// c <= kAddLayerNormMaxChannels (AddLayerNormSupports), else cudaErrorInvalidValue.
inline constexpr int64_t kAddLayerNormMaxChannels = 2048;
bool AddLayerNormSupports(int64_t c);
cudaError_t LaunchAddLayerNorm(ElemType t, void* a, const void* b, const void* weight, const void* bias, void* y,
                               int64_t rows, int64_t c, float eps, cudaStream_t stream);

// Scratch floats GroupNorm needs for `n * groups` groups of `group_size` elements.
int64_t GroupNormWorkspaceFloats(int64_t n, int64_t groups, int64_t group_size);

// Terms added to x where a GroupNorm reads it, never stored (a ResNet block's conv1 bias and
// time embedding before norm2: one pass over the activation less). The kernels normalise
// (x + bias[c]) + extra[n, c], summed in fp32 and rounded once to the element type: exactly the
// values LaunchBiasAdd (extra_kind 1) would have stored, so the output is bit-identical to
// bias-add then GroupNorm. Either pointer may be null; both have x's element type.
struct GroupNormPreAdd {
  const void* bias = nullptr;   // [c]
  const void* extra = nullptr;  // [n, c] contiguous
  bool any() const { return bias != nullptr || extra != nullptr; }
};
// Pre-added terms need the channels-last layout, c % 8 == 0 (c <= 4096) and 16-byte aligned x,
// bias and extra.
bool GroupNormPreAddSupports(const void* x, int64_t c, bool channels_last, const GroupNormPreAdd& pre);

// GroupNorm over x [n, c, hw] (c divisible by groups) stored contiguous NCHW, or channels-last
// ([n, hw, c] in memory) when `channels_last`; affine with weight/bias [c] (same element type
// as x), then SiLU when `silu`. y has x's layout. Deterministic: the statistics are
// reduced in a fixed order (no atomics), so equal inputs give bit-equal outputs.
// `workspace` holds GroupNormWorkspaceFloats(...) floats. `pre`: see GroupNormPreAdd
// (cudaErrorInvalidValue where GroupNormPreAddSupports is false).
cudaError_t LaunchGroupNorm(ElemType t, const void* x, const void* weight, const void* bias, void* y, int64_t n,
                            int64_t c, int64_t hw, int64_t groups, float eps, bool silu, bool channels_last,
                            float* workspace, cudaStream_t stream, const GroupNormPreAdd& pre = {});

// The two halves of LaunchGroupNorm, for patch parallelism (statistics exchanged between them):
// LaunchGroupNormStats writes mean_var[i] = mean and mean_var[n * groups + i] = biased variance
// of group i = image * groups + group (workspace as for LaunchGroupNorm);
// LaunchGroupNormApply normalises with mean_rstd[2 i] = mean, mean_rstd[2 i + 1] = 1/sqrt(var + eps).
cudaError_t LaunchGroupNormStats(ElemType t, const void* x, int64_t n, int64_t c, int64_t hw, int64_t groups,
                                 bool channels_last, float* workspace, float* mean_var, cudaStream_t stream);
cudaError_t LaunchGroupNormApply(ElemType t, const void* x, const void* weight, const void* bias, void* y, int64_t n,
                                 int64_t c, int64_t hw, int64_t groups, bool silu, bool channels_last,
                                 const float* mean_rstd, cudaStream_t stream);

// Per-strip statistics packets of one group norm: packets[s] points at strip s's [2, ng]
// floats (ng means, then ng biased variances), rows[s] its row count (the weight).
struct GroupStatsInputs {
  static constexpr int kMaxStrips = 16;
  const float* packets[kMaxStrips];
  float rows[kMaxStrips];
  int strips;
  int own;  // this rank's strip
};
// mean_rstd[2 g], [2 g + 1] for each of the ng groups, combined in double:
//   mode 0  exact merge (Chan et al.) of packets[0..strips) in strip order;
//   mode 2  the same with fresh_own in place of packets[own] (stale_gn);
//   mode 1  corrected_async_gn: E[x], E[x^2] of all packets (stale) plus fresh_own - packets[own];
//           a negative variance falls back to fresh_own's.
// store_fresh (optional, [2, ng]): where fresh_own is copied once its group is combined - the
// own slot of the stale buffer, which may be packets[own] itself (each group's thread reads its
// stale values before it overwrites them), so no separate copy is needed.
cudaError_t LaunchGroupStatsCombine(const GroupStatsInputs& inputs, const float* fresh_own, int64_t ng, int mode,
                                    float eps, float* mean_rstd, cudaStream_t stream, float* store_fresh = nullptr);
// LaunchGroupNormStats (into fresh_own, [2, n * groups]) then LaunchGroupStatsCombine with it, for
// the displaced modes (mode 1 or 2; cudaErrorInvalidValue otherwise), with the same results bit
// for bit, in two kernels instead of three where n * groups <= 32 (SDXL: batch 1, 32 groups) and
// `fused`; otherwise exactly those two launches.
cudaError_t LaunchGroupNormStatsCombine(ElemType t, const void* x, int64_t n, int64_t c, int64_t hw, int64_t groups,
                                        bool channels_last, float* workspace, const GroupStatsInputs& inputs, int mode,
                                        float eps, float* fresh_own, float* mean_rstd, cudaStream_t stream,
                                        float* store_fresh = nullptr, bool fused = true);

// In place on y [n, c, hw] (NCHW, or channels-last when `channels_last`): y += bias[c] (bias may
// be null) plus, by extra_kind: 0 nothing, 1 extra[n, c] (per image and channel, e.g. a time
// embedding), 2 extra of y's shape and layout (a residual). Needs 16-byte aligned pointers and
// hw % 8 == 0 (NCHW) or c % 8 == 0 (channels-last); cudaErrorInvalidValue otherwise.
cudaError_t LaunchBiasAdd(ElemType t, void* y, const void* bias, const void* extra, int extra_kind, int64_t n,
                          int64_t c, int64_t hw, bool channels_last, cudaStream_t stream);

// The displaced self-attention's keys and values in one pass. The own strip's fresh K/V (k, v:
// [batch, rows[own], inner] with unit last stride and the given batch and row strides in
// elements, e.g. views of the fused q/k/v projection) go token-major into `own_out` ([rows[own],
// batch, 2 inner]: keys then values, the own slot of the stale buffers) and into `full`
// ([sum(rows), batch, 2 inner], the strips in row order), each other strip s's stale K/V
// (parts[s]: [rows[s], batch, 2 inner] contiguous) into `full` around them. Pure copies, 2-byte
// elements (fp16, bf16): `full` equals the concatenation bit for bit. Needs inner % 8 == 0,
// strides that are multiples of 8, 16-byte aligned pointers (KeyValueAssembleSupports);
// cudaErrorInvalidValue otherwise.
struct KeyValueParts {
  static constexpr int kMaxStrips = 16;
  const void* parts[kMaxStrips];  // parts[own] is not read
  int64_t rows[kMaxStrips];
  int strips;
  int own;
};
bool KeyValueAssembleSupports(const void* k, const void* v, int64_t batch_stride, int64_t row_stride, int64_t batch,
                              int64_t inner, const KeyValueParts& parts, const void* own_out, const void* full);
cudaError_t LaunchKeyValueAssemble(ElemType t, const void* k, const void* v, int64_t batch_stride, int64_t row_stride,
                                   int64_t batch, int64_t inner, const KeyValueParts& parts, void* own_out, void* full,
                                   cudaStream_t stream);

}  // namespace distri::kernels
