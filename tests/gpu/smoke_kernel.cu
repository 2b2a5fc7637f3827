// A trivial kernel compiled by nvcc: proves the CUDA toolchain path of the build works.
#include <cuda_runtime.h>

namespace distri::test {

__global__ void AxpyKernel(int n, float a, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

cudaError_t LaunchAxpy(int n, float a, const float* x, float* y, cudaStream_t stream) {
  AxpyKernel<<<(n + 255) / 256, 256, 0, stream>>>(n, a, x, y);
  return cudaGetLastError();
}

}  // namespace distri::test
