// y += bias[c] (+ extra): the bias of a convolution folded into the add that follows it (the
// time embedding or the residual of a ResNet block), one pass over memory instead of two.
#include "actors/kernels/elem_convert.cuh"
#include "actors/kernels/fused_kernels.h"

namespace distri::kernels {
namespace {

template <typename T, bool kNhwc>
__global__ void BiasAdd(T* __restrict__ y, const T* __restrict__ bias, const T* __restrict__ extra, int extra_kind,
                        int64_t n, int64_t c, int64_t hw) {
  const int64_t total = n * c * hw, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i8 = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i8 < total / 8; i8 += step) {
    const int64_t base = i8 * 8;
    uint4 v = reinterpret_cast<const uint4*>(y)[i8];
    uint4 e = extra_kind == 2 ? reinterpret_cast<const uint4*>(extra)[i8] : uint4{};
    T* vv = reinterpret_cast<T*>(&v);
    const T* ev = reinterpret_cast<const T*>(&e);
    const int64_t img = base / (c * hw);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      // NCHW with hw % 8 == 0: the 8 elements share a channel; NHWC: 8 consecutive channels.
      const int64_t ch = kNhwc ? (base + k) % c : (base / hw) % c;
      float r = ToFloat(vv[k]) + (bias ? ToFloat(bias[ch]) : 0.f);
      if (extra_kind == 1) r += ToFloat(extra[img * c + ch]);
      if (extra_kind == 2) r += ToFloat(ev[k]);
      vv[k] = FromFloat<T>(r);
    }
    reinterpret_cast<uint4*>(y)[i8] = v;
  }
}

template <typename T>
cudaError_t Launch(void* y, const void* bias, const void* extra, int extra_kind, int64_t n, int64_t c, int64_t hw,
                   bool nhwc, cudaStream_t s) {
  const int64_t total = n * c * hw;
  if (total == 0) return cudaSuccess;
  if (total % 8 != 0 || (nhwc ? c % 8 != 0 : hw % 8 != 0)) return cudaErrorInvalidValue;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((total / 8 + threads - 1) / threads, 65535 * 16));
  auto* yt = static_cast<T*>(y);
  auto* bt = static_cast<const T*>(bias);
  auto* et = static_cast<const T*>(extra);
  if (nhwc) BiasAdd<T, true><<<blocks, threads, 0, s>>>(yt, bt, et, extra_kind, n, c, hw);
  else BiasAdd<T, false><<<blocks, threads, 0, s>>>(yt, bt, et, extra_kind, n, c, hw);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchBiasAdd(ElemType t, void* y, const void* bias, const void* extra, int extra_kind, int64_t n,
                          int64_t c, int64_t hw, bool channels_last, cudaStream_t stream) {
  return t == ElemType::kHalf ? Launch<__half>(y, bias, extra, extra_kind, n, c, hw, channels_last, stream)
                              : Launch<__nv_bfloat16>(y, bias, extra, extra_kind, n, c, hw, channels_last, stream);
}

}  // namespace distri::kernels
