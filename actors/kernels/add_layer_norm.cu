#include <algorithm>
#include <atomic>

#include "actors/kernels/elem_convert.cuh"
#include "actors/kernels/fused_kernels.h"

namespace distri::kernels {
namespace {

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// One warp per row of c elements (c % 8 == 0, c <= 256 * kMaxVec): each lane holds up to
// kMaxVec vectors of 8 elements in registers. The sum is rounded to T before the statistics,
// exactly as `a + b` then LayerNorm of that T tensor computes it; two passes over the
// registers (mean, then the centred second moment) keep the variance accurate.
template <typename T, int kMaxVec>
__global__ void AddLayerNormWarp(T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ w,
                                 const T* __restrict__ bias, T* __restrict__ y, int64_t rows, int c, float eps) {
  const int lane = threadIdx.x & 31;
  const int64_t row = blockIdx.x * int64_t(blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int nvec = c / 8;
  T* arow = a + row * c;
  const T* brow = b + row * c;
  T* yrow = y + row * c;
  float v[kMaxVec][8];
  float sum = 0.f;
#pragma unroll
  for (int k = 0; k < kMaxVec; ++k) {
    const int j = lane + k * 32;
    if (j < nvec) {
      const uint4 ua = *reinterpret_cast<const uint4*>(arow + j * 8);
      const uint4 ub = *reinterpret_cast<const uint4*>(brow + j * 8);
      const T* av = reinterpret_cast<const T*>(&ua);
      const T* bv = reinterpret_cast<const T*>(&ub);
      uint4 us;
      T* sv = reinterpret_cast<T*>(&us);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        sv[e] = FromFloat<T>(ToFloat(av[e]) + ToFloat(bv[e]));
        v[k][e] = ToFloat(sv[e]);
        sum += v[k][e];
      }
      *reinterpret_cast<uint4*>(arow + j * 8) = us;
    }
  }
  const float mean = WarpSum(sum) / c;
  float sq = 0.f;
#pragma unroll
  for (int k = 0; k < kMaxVec; ++k) {
    if (lane + k * 32 < nvec) {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float d = v[k][e] - mean;
        sq += d * d;
      }
    }
  }
  const float rstd = rsqrtf(WarpSum(sq) / c + eps);
#pragma unroll
  for (int k = 0; k < kMaxVec; ++k) {
    const int j = lane + k * 32;
    if (j < nvec) {
      const uint4 uw = *reinterpret_cast<const uint4*>(w + j * 8);
      const uint4 ubias = *reinterpret_cast<const uint4*>(bias + j * 8);
      const T* wv = reinterpret_cast<const T*>(&uw);
      const T* bv = reinterpret_cast<const T*>(&ubias);
      uint4 uo;
      T* ov = reinterpret_cast<T*>(&uo);
#pragma unroll
      for (int e = 0; e < 8; ++e) ov[e] = FromFloat<T>((v[k][e] - mean) * rstd * ToFloat(wv[e]) + ToFloat(bv[e]));
      *reinterpret_cast<uint4*>(yrow + j * 8) = uo;
    }
  }
}

// Streaming multiprocessors of the current device (cached per device index).
int MultiprocessorCount() {
  static std::atomic<int> counts[64] = {};  // one thread per GPU may ask at once
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 132;
  int n = counts[dev].load(std::memory_order_relaxed);
  if (n == 0) {
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) n = 132;
    counts[dev].store(n, std::memory_order_relaxed);
  }
  return n;
}

template <typename T, int kMaxVec>
cudaError_t LaunchWith(void* a, const void* b, const void* w, const void* bias, void* y, int64_t rows, int c,
                       float eps, cudaStream_t s) {
  // Up to 8 rows (warps) a block, fewer when that leaves SMs idle: a patch-parallel rank's
  // 512-row LayerNorms (SDXL's 1280-channel blocks, 1024 px on 4 GPUs) made 64 blocks of 8 for
  // 132 SMs. The per-row work is the same either way (same bits).
  const int64_t target_blocks = 2 * int64_t{MultiprocessorCount()};
  int rows_per_block = 8;
  while (rows_per_block > 1 && (rows + rows_per_block - 1) / rows_per_block < target_blocks) rows_per_block /= 2;
  const int threads = 32 * rows_per_block;
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  AddLayerNormWarp<T, kMaxVec><<<static_cast<unsigned>(blocks), threads, 0, s>>>(
      static_cast<T*>(a), static_cast<const T*>(b), static_cast<const T*>(w), static_cast<const T*>(bias),
      static_cast<T*>(y), rows, c, eps);
  return cudaGetLastError();
}

template <typename T>
cudaError_t Launch(void* a, const void* b, const void* w, const void* bias, void* y, int64_t rows, int64_t c,
                   float eps, cudaStream_t s) {
  if (rows == 0) return cudaSuccess;
  const int ci = static_cast<int>(c);
  if (c <= 256) return LaunchWith<T, 1>(a, b, w, bias, y, rows, ci, eps, s);
  if (c <= 512) return LaunchWith<T, 2>(a, b, w, bias, y, rows, ci, eps, s);
  if (c <= 1024) return LaunchWith<T, 4>(a, b, w, bias, y, rows, ci, eps, s);
  return LaunchWith<T, 8>(a, b, w, bias, y, rows, ci, eps, s);
}

}  // namespace

bool AddLayerNormSupports(int64_t c) { return c > 0 && c % 8 == 0 && c <= kAddLayerNormMaxChannels; }

cudaError_t LaunchAddLayerNorm(ElemType t, void* a, const void* b, const void* weight, const void* bias, void* y,
                               int64_t rows, int64_t c, float eps, cudaStream_t stream) {
  if (!AddLayerNormSupports(c)) return cudaErrorInvalidValue;
  return t == ElemType::kHalf ? Launch<__half>(a, b, weight, bias, y, rows, c, eps, stream)
                              : Launch<__nv_bfloat16>(a, b, weight, bias, y, rows, c, eps, stream);
}

}  // namespace distri::kernels
