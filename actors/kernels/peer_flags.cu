// See peer_flags.h. The flags are 32-bit words read with volatile loads (they bypass L1: a
// peer's store over NVLink lands in this GPU's L2), so a waiting thread sees it.
#include "actors/kernels/peer_flags.h"

#include <algorithm>

namespace distri::kernels {
namespace {

__device__ __forceinline__ uint64_t GlobalTimer() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void SetFlag(volatile uint32_t* flag, uint32_t value) {
  __threadfence_system();
  *flag = value;
  __threadfence_system();
}

__global__ void WaitFlag(volatile uint32_t* flag, uint32_t value, uint32_t reset, uint64_t timeout_ns,
                         volatile uint32_t* error, uint32_t error_code) {
  const uint64_t start = GlobalTimer();
  while (*flag != value) {
    if (*error != 0 || GlobalTimer() - start > timeout_ns) {
      if (*error == 0) *error = error_code;
      __threadfence_system();
      return;
    }
    __nanosleep(200);
  }
  __threadfence_system();
  *flag = reset;
}

__global__ void FillFlags(uint32_t* flags, int64_t n, uint32_t value) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    flags[i] = value;
  }
}

}  // namespace

cudaError_t LaunchFillFlags(uint32_t* flags, int64_t n, uint32_t value, cudaStream_t stream) {
  if (n < 0 || (n > 0 && flags == nullptr)) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 1024);
  FillFlags<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(flags, n, value);
  return cudaGetLastError();
}

cudaError_t LaunchSetFlag(uint32_t* flag, uint32_t value, cudaStream_t stream) {
  if (flag == nullptr) return cudaErrorInvalidValue;
  SetFlag<<<1, 1, 0, stream>>>(flag, value);
  return cudaGetLastError();
}

cudaError_t LaunchWaitFlag(uint32_t* flag, uint32_t value, uint32_t reset, uint64_t timeout_ns, uint32_t* error,
                           uint32_t error_code, cudaStream_t stream) {
  if (flag == nullptr || error == nullptr || error_code == 0) return cudaErrorInvalidValue;
  WaitFlag<<<1, 1, 0, stream>>>(flag, value, reset, timeout_ns, error, error_code);
  return cudaGetLastError();
}

}  // namespace distri::kernels
