// GroupNorm (+ SiLU) for NCHW fp16/bf16 in three small kernels:
//   1. partial sums: every group is split into chunks of kChunk elements, one block per chunk,
//      so even 2 images x 32 groups keep all SMs busy (ATen uses one block per group);
//   2. finalize: one thread per group combines its chunks in a fixed order (Chan's parallel
//      variance), giving mean and 1/std without atomics (deterministic);
//   3. apply: elementwise normalize, scale, shift (and SiLU), 8 elements per thread.
#include "actors/kernels/elem_convert.cuh"
#include "actors/kernels/fused_kernels.h"

namespace distri::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 8192;


int64_t Chunks(int64_t group_size) { return (group_size + kChunk - 1) / kChunk; }

// Block-wide sum of two floats; the result is valid in thread 0.
__device__ float2 BlockSum(float2 v) {
  __shared__ float2 warp_sums[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) {
    v.x += __shfl_down_sync(0xffffffff, v.x, o);
    v.y += __shfl_down_sync(0xffffffff, v.y, o);
  }
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  float2 s = make_float2(0.f, 0.f);
  if (threadIdx.x == 0) {
    for (int w = 0; w < kThreads / 32; ++w) s.x += warp_sums[w].x, s.y += warp_sums[w].y;
  }
  return s;
}

// partial[(group * chunks + chunk) * 3 + {0,1,2}] = count, mean, M2 of the chunk.
template <typename T>
__global__ void PartialStats(const T* __restrict__ x, int64_t group_size, int64_t chunks, float* __restrict__ partial) {
  const int64_t group = blockIdx.y, chunk = blockIdx.x;
  const int64_t begin = chunk * kChunk, end = min(begin + kChunk, group_size);
  const T* g = x + group * group_size;
  // Shift by the chunk's first element: sums of (x - shift) keep the E[x^2] - E[x]^2 form
  // accurate when the mean is large compared with the spread.
  const float shift = ToFloat(g[begin]);
  float2 acc = make_float2(0.f, 0.f);
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
    const float v = ToFloat(g[i]) - shift;
    acc.x += v;
    acc.y += v * v;
  }
  float2 s = BlockSum(acc);
  if (threadIdx.x == 0) {
    const float n = static_cast<float>(end - begin);
    const float mean = s.x / n;
    float* p = partial + (group * chunks + chunk) * 3;
    p[0] = n;
    p[1] = mean + shift;
    p[2] = fmaxf(s.y - s.x * mean, 0.f);
  }
}

// Chan's parallel update: (n, mean, m2) absorbs another set's (nb, mb, m2b).
__device__ __forceinline__ void Combine(float& n, float& mean, float& m2, float nb, float mb, float m2b) {
  const float tot = n + nb;
  if (tot == 0.f) return;
  const float delta = mb - mean;
  mean += delta * nb / tot;
  m2 += m2b + delta * delta * n * nb / tot;
  n = tot;
}

// One group's (count, mean, M2) over `np` pixels from its channels' shifted sums: channel ch
// has sum[ch] and sq[ch] of (x - shift[ch]); channels are combined in order (deterministic).
__device__ void WriteGroupPartial(const float* sum, const float* sq, const float* shift, int64_t g, int64_t cpg,
                                  float np, float* out) {
  float cnt = 0.f, mean = 0.f, m2 = 0.f;
  for (int64_t ch = g * cpg; ch < (g + 1) * cpg; ++ch) {
    const float m = sum[ch] / np;
    Combine(cnt, mean, m2, np, m + shift[ch], fmaxf(sq[ch] - sum[ch] * m, 0.f));
  }
  out[0] = cnt;
  out[1] = mean;
  out[2] = m2;
}

// Channels-last layout ([n, hw, c]): a block takes kPixels pixels of one image; thread t owns
// channels t, t + kThreads, ... and sums them over the pixels (reads are coalesced along c);
// then per group, in a fixed channel order, the channel sums are combined. partial as above,
// chunk = pixel block.
constexpr int64_t kPixels = 64;  // 256 blocks an image at 128x128 (measured better than 256 pixels)

template <typename T>
__global__ void PartialStatsNhwc(const T* __restrict__ x, int64_t hw, int64_t c, int64_t cpg, int64_t chunks,
                                 float* __restrict__ partial) {
  extern __shared__ float sh[];  // [c] count-free sums, [c] shifted sums of squares, [c] shifts
  const int64_t n = blockIdx.y, chunk = blockIdx.x;
  const int64_t p0 = chunk * kPixels, p1 = min(p0 + kPixels, hw);
  const T* img = x + n * hw * c;
  for (int64_t ch = threadIdx.x; ch < c; ch += blockDim.x) {
    const float shift = ToFloat(img[p0 * c + ch]);
    float s = 0.f, s2 = 0.f;
    for (int64_t p = p0; p < p1; ++p) {
      const float v = ToFloat(img[p * c + ch]) - shift;
      s += v;
      s2 += v * v;
    }
    sh[ch] = s;
    sh[c + ch] = s2;
    sh[2 * c + ch] = shift;
  }
  __syncthreads();
  const int64_t groups = c / cpg;
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    WriteGroupPartial(sh, sh + c, sh + 2 * c, g, cpg, static_cast<float>(p1 - p0),
                      partial + ((n * groups + g) * chunks + chunk) * 3);
  }
}

// The same for c % 8 == 0 with 16-byte loads: thread (lane, row) of the block reads channels
// [8 lane, 8 lane + 8) of pixels p0 + row, p0 + row + rows, ...; the rows' sums are then added in
// row order per channel (all shifted by the chunk's first pixel), so the result does not depend
// on timing. A chunk has `ppc` pixels, chosen from the shape alone (VecPixelsPerChunk): up to
// kPixelsVec, fewer when the image is small, so that a batch-1 32x16 latent (512 pixels) still
// spreads over ~kVecTargetBlocks blocks instead of 4 (16 us -> a few us a call on an H100).
constexpr int64_t kPixelsVec = 128;
constexpr int64_t kVecTargetBlocks = 256;
constexpr int kVecMaxThreads = 512;

// Pre-added terms of 8 consecutive channels [ch0, ch0 + 8) of image n (GroupNormPreAdd).
template <typename T>
struct PreTerms {
  float b[8], e[8];
  __device__ PreTerms(const T* bias, const T* extra, int64_t n, int64_t c, int64_t ch0) {
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      b[k] = bias != nullptr ? ToFloat(bias[ch0 + k]) : 0.f;
      e[k] = extra != nullptr ? ToFloat(extra[n * c + ch0 + k]) : 0.f;
    }
  }
  // The value LaunchBiasAdd (extra_kind 1) would have stored: (v + bias) + extra, rounded.
  __device__ float operator()(float v, int k) const { return ToFloat(FromFloat<T>(v + b[k] + e[k])); }
};

template <typename T, bool kPre>
__global__ void PartialStatsNhwcVec(const T* __restrict__ x, int64_t hw, int64_t c, int64_t cpg, int64_t chunks,
                                    int64_t ppc, float* __restrict__ partial, const T* __restrict__ pre_bias,
                                    const T* __restrict__ pre_extra) {
  extern __shared__ float sh[];  // [rows][c] sums, [rows][c] sums of squares, [c] shifts
  const int64_t lanes = c / 8;
  const int64_t rows = blockDim.x / lanes > 0 ? blockDim.x / lanes : 1;
  const int64_t n = blockIdx.y, chunk = blockIdx.x;
  const int64_t p0 = chunk * ppc, p1 = min(p0 + ppc, hw);
  const T* img = x + n * hw * c;
  float* sums = sh;
  float* sq = sh + rows * c;
  float* shifts = sh + 2 * rows * c;
  const int64_t lane = threadIdx.x % lanes, row = threadIdx.x / lanes;
  if (row < rows) {
    // Without kPre the terms are never read (zero-cost); with it, every value is pre-added.
    const PreTerms<T> pre(kPre ? pre_bias : nullptr, kPre ? pre_extra : nullptr, n, c, lane * 8);
    auto load = [&](float v, int k) { return kPre ? pre(v, k) : v; };
    uint4 first = *reinterpret_cast<const uint4*>(img + p0 * c + lane * 8);
    const T* fv = reinterpret_cast<const T*>(&first);
    float shift[8], s[8], s2[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) shift[k] = load(ToFloat(fv[k]), k), s[k] = 0.f, s2[k] = 0.f;
    for (int64_t p = p0 + row; p < p1; p += rows) {
      uint4 v = *reinterpret_cast<const uint4*>(img + p * c + lane * 8);
      const T* vv = reinterpret_cast<const T*>(&v);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const float d = load(ToFloat(vv[k]), k) - shift[k];
        s[k] += d;
        s2[k] += d * d;
      }
    }
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      sums[row * c + lane * 8 + k] = s[k];
      sq[row * c + lane * 8 + k] = s2[k];
      if (row == 0) shifts[lane * 8 + k] = shift[k];
    }
  }
  __syncthreads();
  for (int64_t ch = threadIdx.x; ch < c; ch += blockDim.x) {  // fold the rows into row 0
    float a = sums[ch], b = sq[ch];
    for (int64_t r = 1; r < rows; ++r) a += sums[r * c + ch], b += sq[r * c + ch];
    sums[ch] = a;
    sq[ch] = b;
  }
  __syncthreads();
  const int64_t groups = c / cpg;
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    WriteGroupPartial(sums, sq, shifts, g, cpg, static_cast<float>(p1 - p0),
                      partial + ((n * groups + g) * chunks + chunk) * 3);
  }
}

// stats[group * 2 + {0,1}] = mean, rstd. One warp per group (WarpGroupStats).
// kMeanVar: stats[group] = mean, stats[groups_total + group] = biased variance instead.
// One warp's reduction of `group`'s `chunks` partials (n, mean, m2): lane l combines chunks l,
// l + 32, ... in order, then the lanes by a fixed shuffle tree (deterministic). Lane 0 holds
// the result. Every lane of the warp must call it.
__device__ __forceinline__ void WarpGroupStats(const float* __restrict__ partial, int64_t group, int64_t chunks,
                                               int lane, float& n, float& mean, float& m2) {
  const float* p = partial + group * chunks * 3;
  n = 0.f, mean = 0.f, m2 = 0.f;
  for (int64_t k = lane; k < chunks; k += 32) Combine(n, mean, m2, p[3 * k], p[3 * k + 1], p[3 * k + 2]);
  for (int o = 16; o > 0; o >>= 1) {
    const float nb = __shfl_down_sync(0xffffffff, n, o), mb = __shfl_down_sync(0xffffffff, mean, o),
                m2b = __shfl_down_sync(0xffffffff, m2, o);
    if (lane < o) Combine(n, mean, m2, nb, mb, m2b);
  }
}

template <bool kMeanVar>
__global__ void FinalizeStats(const float* __restrict__ partial, int64_t groups_total, int64_t chunks, float eps,
                              float* __restrict__ stats) {
  const int64_t group = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (group >= groups_total) return;
  float n, mean, m2;
  WarpGroupStats(partial, group, chunks, lane, n, mean, m2);
  if (lane == 0) {
    if (kMeanVar) {
      stats[group] = mean;
      stats[groups_total + group] = m2 / n;
    } else {
      stats[group * 2] = mean;
      stats[group * 2 + 1] = rsqrtf(m2 / n + eps);  // biased variance, as nn.GroupNorm
    }
  }
}

// kPre (channels-last vec path only): x is pre-added as in PartialStatsNhwcVec.
template <typename T, bool kSilu, bool kNhwc, bool kPre>
__global__ void Apply(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, T* __restrict__ y,
                      const float* __restrict__ stats, int64_t total, int64_t c, int64_t hw, int64_t cpg, bool vec,
                      const T* __restrict__ pre_bias, const T* __restrict__ pre_extra) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  const int64_t groups = c / cpg;
  // scale/shift of element i's channel: y = x * a + b' with a = rstd * w, b' = b - mean * a.
  auto coeffs = [&](int64_t i, float* a, float* s) {
    const int64_t ch = kNhwc ? i % c : (i / hw) % c, group = (i / (hw * c)) * groups + ch / cpg;
    *a = stats[2 * group + 1] * ToFloat(w[ch]);
    *s = ToFloat(b[ch]) - stats[2 * group] * *a;
  };
  auto act = [](float r) { return kSilu ? r / (1.0f + __expf(-r)) : r; };
  if (vec && !kNhwc) {  // hw % 8 == 0: 8 consecutive elements share one channel
    for (int64_t i8 = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i8 < total / 8; i8 += step) {
      float a, sh;
      coeffs(i8 * 8, &a, &sh);
      uint4 in = reinterpret_cast<const uint4*>(x)[i8];
      const T* iv = reinterpret_cast<const T*>(&in);
      uint4 out;
      T* ov = reinterpret_cast<T*>(&out);
#pragma unroll
      for (int k = 0; k < 8; ++k) ov[k] = FromFloat<T>(act(ToFloat(iv[k]) * a + sh));
      reinterpret_cast<uint4*>(y)[i8] = out;
    }
  } else if (vec) {  // channels last, c % 8 == 0: 8 consecutive channels of one pixel
    for (int64_t i8 = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i8 < total / 8; i8 += step) {
      const int64_t base = i8 * 8, ch0 = base % c, g0 = (base / (hw * c)) * groups;
      uint4 in = reinterpret_cast<const uint4*>(x)[i8];
      uint4 wv = *reinterpret_cast<const uint4*>(w + ch0);
      uint4 bv = *reinterpret_cast<const uint4*>(b + ch0);
      const T* iv = reinterpret_cast<const T*>(&in);
      const T* wk = reinterpret_cast<const T*>(&wv);
      const T* bk = reinterpret_cast<const T*>(&bv);
      const PreTerms<T> pre(kPre ? pre_bias : nullptr, kPre ? pre_extra : nullptr, base / (hw * c), c, ch0);
      uint4 out;
      T* ov = reinterpret_cast<T*>(&out);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const int64_t group = g0 + (ch0 + k) / cpg;
        const float a = stats[2 * group + 1] * ToFloat(wk[k]);
        const float v = kPre ? pre(ToFloat(iv[k]), k) : ToFloat(iv[k]);
        ov[k] = FromFloat<T>(act(v * a + (ToFloat(bk[k]) - stats[2 * group] * a)));
      }
      reinterpret_cast<uint4*>(y)[i8] = out;
    }
  } else {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += step) {
      float a, sh;
      coeffs(i, &a, &sh);
      y[i] = FromFloat<T>(act(ToFloat(x[i]) * a + sh));
    }
  }
}

// Chunks a group's workspace holds (GroupNormWorkspaceFloats): the NCHW chunking or one per
// kPixels pixels of every channel of the group, whichever is more.
int64_t WorkspaceChunks(int64_t group_size) { return std::max(Chunks(group_size), (group_size + kPixels - 1) / kPixels); }

// Pixels per chunk of PartialStatsNhwcVec: aim at kVecTargetBlocks blocks over the batch, at
// most kPixelsVec and at least 8 pixels a chunk, and never more chunks than the workspace holds.
int64_t VecPixelsPerChunk(int64_t n, int64_t hw, int64_t group_size) {
  int64_t ppc = std::min<int64_t>(kPixelsVec, std::max<int64_t>(8, (n * hw + kVecTargetBlocks - 1) / kVecTargetBlocks));
  const int64_t cap = WorkspaceChunks(group_size);
  if ((hw + ppc - 1) / ppc > cap) ppc = (hw + cap - 1) / cap;
  return ppc;
}

// Partial statistics of every (image, group) into `partial` (chunks * 3 floats per group);
// returns the number of chunks per group, or -1 when the layout is not supported.
template <typename T>
int64_t LaunchPartials(const void* xv, int64_t n, int64_t c, int64_t hw, int64_t groups, bool nhwc, float* partial,
                       cudaStream_t s, const GroupNormPreAdd& pre = {}) {
  const T* x = static_cast<const T*>(xv);
  const int64_t group_size = c / groups * hw, groups_total = n * groups;
  const bool nhwc_vec = nhwc && c % 8 == 0 && c / 8 <= kVecMaxThreads && reinterpret_cast<uintptr_t>(xv) % 16 == 0;
  if (pre.any() && !nhwc_vec) return -1;  // pre-added terms: the channels-last vec kernel only
  const int64_t ppc = nhwc_vec ? VecPixelsPerChunk(n, hw, group_size) : kPixels;
  const int64_t chunks = nhwc ? (hw + ppc - 1) / ppc : Chunks(group_size);
  if (nhwc_vec) {
    // As many pixel rows as fit kVecMaxThreads threads and 48 KiB of shared memory.
    const int64_t lanes = c / 8;
    int64_t rows = std::max<int64_t>(1, kVecMaxThreads / lanes);
    while (rows > 1 && (2 * rows + 1) * c * static_cast<int64_t>(sizeof(float)) > 48 * 1024) --rows;
    const size_t shmem = (2 * rows + 1) * c * sizeof(float);
    if (shmem > 48 * 1024) return -1;
    const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(n));
    const auto threads = static_cast<unsigned>(lanes * rows);
    if (pre.any()) {
      PartialStatsNhwcVec<T, true><<<grid, threads, shmem, s>>>(x, hw, c, c / groups, chunks, ppc, partial,
                                                                static_cast<const T*>(pre.bias),
                                                                static_cast<const T*>(pre.extra));
    } else {
      PartialStatsNhwcVec<T, false><<<grid, threads, shmem, s>>>(x, hw, c, c / groups, chunks, ppc, partial, nullptr,
                                                                 nullptr);
    }
  } else if (nhwc) {
    const size_t shmem = 3 * c * sizeof(float);
    if (shmem > 48 * 1024) return -1;  // c > 4096: not a UNet we know
    PartialStatsNhwc<T><<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(n)), kThreads, shmem, s>>>(
        x, hw, c, c / groups, chunks, partial);
  } else {
    PartialStats<T><<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(groups_total)), kThreads, 0, s>>>(
        x, group_size, chunks, partial);
  }
  return chunks;
}

template <typename T>
cudaError_t LaunchApply(const void* xv, const void* wv, const void* bv, void* yv, int64_t n, int64_t c, int64_t hw,
                        int64_t groups, bool silu, bool nhwc, const float* stats, cudaStream_t s,
                        const GroupNormPreAdd& pre = {}) {
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  const int64_t total = n * c * hw;
  const bool aligned = reinterpret_cast<uintptr_t>(xv) % 16 == 0 && reinterpret_cast<uintptr_t>(yv) % 16 == 0;
  const bool vec = aligned && (nhwc ? c % 8 == 0 && reinterpret_cast<uintptr_t>(wv) % 16 == 0 &&
                                                     reinterpret_cast<uintptr_t>(bv) % 16 == 0
                                           : hw % 8 == 0);
  const int64_t work = vec ? total / 8 : total;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((work + kThreads - 1) / kThreads, 65535 * 16));
  const T* w = static_cast<const T*>(wv);
  const T* b = static_cast<const T*>(bv);
  const int64_t cpg = c / groups;
  const T* pb = static_cast<const T*>(pre.bias);
  const T* pe = static_cast<const T*>(pre.extra);
  if (pre.any()) {
    if (!nhwc || !vec) return cudaErrorInvalidValue;  // pre-added terms: the channels-last vec path only
    if (silu) Apply<T, true, true, true><<<blocks, kThreads, 0, s>>>(x, w, b, y, stats, total, c, hw, cpg, vec, pb, pe);
    else Apply<T, false, true, true><<<blocks, kThreads, 0, s>>>(x, w, b, y, stats, total, c, hw, cpg, vec, pb, pe);
  } else if (nhwc) {
    if (silu) Apply<T, true, true, false><<<blocks, kThreads, 0, s>>>(x, w, b, y, stats, total, c, hw, cpg, vec, pb, pe);
    else Apply<T, false, true, false><<<blocks, kThreads, 0, s>>>(x, w, b, y, stats, total, c, hw, cpg, vec, pb, pe);
  } else {
    if (silu) Apply<T, true, false, false><<<blocks, kThreads, 0, s>>>(x, w, b, y, stats, total, c, hw, cpg, vec, pb, pe);
    else Apply<T, false, false, false><<<blocks, kThreads, 0, s>>>(x, w, b, y, stats, total, c, hw, cpg, vec, pb, pe);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t Launch(const void* xv, const void* wv, const void* bv, void* yv, int64_t n, int64_t c, int64_t hw,
                   int64_t groups, float eps, bool silu, bool nhwc, float* ws, cudaStream_t s,
                   const GroupNormPreAdd& pre) {
  const int64_t group_size = c / groups * hw, groups_total = n * groups;
  if (groups_total == 0 || group_size == 0) return cudaSuccess;
  if (pre.any() && !GroupNormPreAddSupports(xv, c, nhwc, pre)) return cudaErrorInvalidValue;
  const int64_t chunks = LaunchPartials<T>(xv, n, c, hw, groups, nhwc, ws, s, pre);
  if (chunks < 0) return cudaErrorInvalidValue;
  float* stats = ws + groups_total * chunks * 3;
  FinalizeStats<false><<<static_cast<unsigned>((groups_total * 32 + 127) / 128), 128, 0, s>>>(ws, groups_total, chunks,
                                                                                              eps, stats);
  return LaunchApply<T>(xv, wv, bv, yv, n, c, hw, groups, silu, nhwc, stats, s, pre);
}

// Patch parallelism: (mean, rstd) of group g from per-strip (mean, var) packets, see
// LaunchGroupStatsCombine; `fresh` is the own strip's fresh [2, ng] packet. Strips combined in
// order (deterministic).
__device__ void CombineGroup(const GroupStatsInputs& in, const float* __restrict__ fresh, int64_t g, int64_t ng,
                             int mode, float eps, float* __restrict__ mean_rstd, float* store_fresh) {
  double mean = 0, var = 0;
  if (mode == 1) {  // corrected: stale global E[x], E[x^2] + (fresh own - stale own)
    double total = 0, gm = 0, ge2 = 0;
    for (int s = 0; s < in.strips; ++s) total += in.rows[s];
    for (int s = 0; s < in.strips; ++s) {
      const double w = in.rows[s] / total, m = in.packets[s][g], v = in.packets[s][ng + g];
      gm += w * m;
      ge2 += w * (v + m * m);
    }
    const double fm = fresh[g], fv = fresh[ng + g];
    const double sm = in.packets[in.own][g], sv = in.packets[in.own][ng + g];
    mean = gm + (fm - sm);
    var = ge2 + ((fv + fm * fm) - (sv + sm * sm)) - mean * mean;
    if (var < 0) var = fv;
  } else {  // merge (Chan et al.): packets in strip order, the own one fresh when mode == 2
    double n = 0, m2 = 0;
    for (int s = 0; s < in.strips; ++s) {
      const float* p = (mode == 2 && s == in.own) ? fresh : in.packets[s];
      const double ns = in.rows[s], ms = p[g], vs = p[ng + g];
      const double nn = n + ns, delta = ms - mean;
      m2 += vs * ns + delta * delta * (n * ns / nn);
      mean += delta * (ns / nn);
      n = nn;
    }
    var = m2 / n;
  }
  mean_rstd[2 * g] = static_cast<float>(mean);
  mean_rstd[2 * g + 1] = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
  // Last: store_fresh may be packets[own], read above by this thread only (its group g).
  if (store_fresh != nullptr) {
    store_fresh[g] = fresh[g];
    store_fresh[ng + g] = fresh[ng + g];
  }
}

// One thread per group.
__global__ void CombineStats(GroupStatsInputs in, const float* __restrict__ fresh, int64_t ng, int mode, float eps,
                             float* __restrict__ mean_rstd, float* store_fresh) {
  const int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (g >= ng) return;
  CombineGroup(in, fresh, g, ng, mode, eps, mean_rstd, store_fresh);
}

// FinalizeStats<true> and CombineStats in one kernel (one launch, one graph node fewer a group
// norm): one warp per group reduces the partials to the fresh own (mean, var) exactly as
// FinalizeStats does and writes it to `fresh` ([2, ng]); a barrier; then one thread per group
// combines it with the packets exactly as CombineStats does. One block covers every group
// (ng <= kMaxFusedCombineGroups), so the barrier orders them all.
constexpr int64_t kMaxFusedCombineGroups = 32;
__global__ void FinalizeAndCombineStats(const float* __restrict__ partial, int64_t ng, int64_t chunks,
                                        GroupStatsInputs in, int mode, float eps, float* __restrict__ fresh,
                                        float* __restrict__ mean_rstd, float* store_fresh) {
  const int64_t group = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (group < ng) {
    float n, mean, m2;
    WarpGroupStats(partial, group, chunks, lane, n, mean, m2);
    if (lane == 0) {
      fresh[group] = mean;
      fresh[ng + group] = m2 / n;
    }
  }
  __syncthreads();
  if (threadIdx.x < ng) CombineGroup(in, fresh, threadIdx.x, ng, mode, eps, mean_rstd, store_fresh);
}

}  // namespace

int64_t GroupNormWorkspaceFloats(int64_t n, int64_t groups, int64_t group_size) {
  // Enough for either layout: NCHW chunks of kChunk elements, or NHWC blocks of kPixels pixels
  // (group_size / cpg pixels, at least one channel per group).
  return n * groups * (WorkspaceChunks(group_size) * 3 + 2);
}

cudaError_t LaunchGroupNormStats(ElemType t, const void* x, int64_t n, int64_t c, int64_t hw, int64_t groups,
                                 bool channels_last, float* workspace, float* mean_var, cudaStream_t stream) {
  const int64_t groups_total = n * groups;
  if (groups_total == 0 || c / groups * hw == 0) return cudaSuccess;
  const int64_t chunks = t == ElemType::kHalf
                             ? LaunchPartials<__half>(x, n, c, hw, groups, channels_last, workspace, stream)
                             : LaunchPartials<__nv_bfloat16>(x, n, c, hw, groups, channels_last, workspace, stream);
  if (chunks < 0) return cudaErrorInvalidValue;
  FinalizeStats<true><<<static_cast<unsigned>((groups_total * 32 + 127) / 128), 128, 0, stream>>>(
      workspace, groups_total, chunks, 0.f, mean_var);
  return cudaGetLastError();
}

cudaError_t LaunchGroupNormStatsCombine(ElemType t, const void* x, int64_t n, int64_t c, int64_t hw, int64_t groups,
                                        bool channels_last, float* workspace, const GroupStatsInputs& inputs, int mode,
                                        float eps, float* fresh_own, float* mean_rstd, cudaStream_t stream,
                                        float* store_fresh, bool fused) {
  const int64_t ng = n * groups;
  if (inputs.strips < 1 || inputs.strips > GroupStatsInputs::kMaxStrips || inputs.own < 0 ||
      inputs.own >= inputs.strips || mode < 1 || mode > 2) {
    return cudaErrorInvalidValue;
  }
  if (ng == 0 || c / groups * hw == 0) return cudaSuccess;
  if (!fused || ng > kMaxFusedCombineGroups) {
    // Asked for, or too many groups for one block: the two launches.
    if (const cudaError_t e = LaunchGroupNormStats(t, x, n, c, hw, groups, channels_last, workspace, fresh_own, stream);
        e != cudaSuccess) {
      return e;
    }
    return LaunchGroupStatsCombine(inputs, fresh_own, ng, mode, eps, mean_rstd, stream, store_fresh);
  }
  const int64_t chunks = t == ElemType::kHalf
                             ? LaunchPartials<__half>(x, n, c, hw, groups, channels_last, workspace, stream)
                             : LaunchPartials<__nv_bfloat16>(x, n, c, hw, groups, channels_last, workspace, stream);
  if (chunks < 0) return cudaErrorInvalidValue;
  FinalizeAndCombineStats<<<1, static_cast<unsigned>(ng * 32), 0, stream>>>(workspace, ng, chunks, inputs, mode, eps,
                                                                           fresh_own, mean_rstd, store_fresh);
  return cudaGetLastError();
}

cudaError_t LaunchGroupStatsCombine(const GroupStatsInputs& inputs, const float* fresh_own, int64_t ng, int mode,
                                    float eps, float* mean_rstd, cudaStream_t stream, float* store_fresh) {
  if (inputs.strips < 1 || inputs.strips > GroupStatsInputs::kMaxStrips || inputs.own < 0 ||
      inputs.own >= inputs.strips) {
    return cudaErrorInvalidValue;
  }
  CombineStats<<<static_cast<unsigned>((ng + 127) / 128), 128, 0, stream>>>(inputs, fresh_own, ng, mode, eps,
                                                                            mean_rstd, store_fresh);
  return cudaGetLastError();
}

cudaError_t LaunchGroupNormApply(ElemType t, const void* x, const void* weight, const void* bias, void* y, int64_t n,
                                 int64_t c, int64_t hw, int64_t groups, bool silu, bool channels_last,
                                 const float* mean_rstd, cudaStream_t stream) {
  if (n * c * hw == 0) return cudaSuccess;
  return t == ElemType::kHalf
             ? LaunchApply<__half>(x, weight, bias, y, n, c, hw, groups, silu, channels_last, mean_rstd, stream)
             : LaunchApply<__nv_bfloat16>(x, weight, bias, y, n, c, hw, groups, silu, channels_last, mean_rstd,
                                          stream);
}

bool GroupNormPreAddSupports(const void* x, int64_t c, bool channels_last, const GroupNormPreAdd& pre) {
  auto aligned = [](const void* p) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return channels_last && c % 8 == 0 && c / 8 <= kVecMaxThreads && aligned(x) && x != nullptr && aligned(pre.bias) &&
         aligned(pre.extra);
}

cudaError_t LaunchGroupNorm(ElemType t, const void* x, const void* weight, const void* bias, void* y, int64_t n,
                            int64_t c, int64_t hw, int64_t groups, float eps, bool silu, bool channels_last,
                            float* workspace, cudaStream_t stream, const GroupNormPreAdd& pre) {
  return t == ElemType::kHalf
             ? Launch<__half>(x, weight, bias, y, n, c, hw, groups, eps, silu, channels_last, workspace, stream, pre)
             : Launch<__nv_bfloat16>(x, weight, bias, y, n, c, hw, groups, eps, silu, channels_last, workspace, stream,
                                     pre);
}

}  // namespace distri::kernels
