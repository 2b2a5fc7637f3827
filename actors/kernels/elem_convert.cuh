// fp16/bf16 <-> fp32 conversions shared by the kernels (all arithmetic is in fp32).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace distri::kernels {

__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T FromFloat(float v);
template <> __device__ __forceinline__ __half FromFloat<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

}  // namespace distri::kernels
