// First GPU smoke test (label gpu): nvcc-built kernel, LibTorch on CUDA (cuBLAS GEMM, fused
// attention in fp16/bf16) and one NCCL all-reduce over every visible GPU.
#include <ATen/ATen.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <vector>

#include "runtime/common/device_info.h"
#ifdef DISTRI_HAVE_NCCL
#include <nccl.h>
#endif

namespace distri::test {
cudaError_t LaunchAxpy(int n, float a, const float* x, float* y, cudaStream_t stream);

namespace {

TEST(GpuSmoke, DeviceVisible) {
  DeviceInfo info = QueryDeviceInfo();
  ASSERT_GE(info.cuda_device_count, 1) << info.ToString();
  ASSERT_TRUE(at::hasCUDA());
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  std::printf("GPU 0: %s, %.1f GiB, sm_%d%d; %s\n", prop.name, prop.totalGlobalMem / 1073741824.0,
              prop.major, prop.minor, info.ToString().c_str());
}

TEST(GpuSmoke, NvccKernel) {
  const int n = 1000;
  std::vector<float> hx(n), hy(n);
  for (int i = 0; i < n; ++i) hx[i] = static_cast<float>(i), hy[i] = 1.0f;
  float *dx = nullptr, *dy = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, n * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, n * sizeof(float)), cudaSuccess);
  cudaMemcpy(dx, hx.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  cudaMemcpy(dy, hy.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  ASSERT_EQ(LaunchAxpy(n, 2.0f, dx, dy, nullptr), cudaSuccess);
  cudaMemcpy(hy.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (int i = 0; i < n; ++i) ASSERT_EQ(hy[i], 2.0f * i + 1.0f) << i;
  cudaFree(dx);
  cudaFree(dy);
}

TEST(GpuSmoke, TorchGemmAndAttentionMatchCpu) {
  at::manual_seed(0);
  at::Tensor a = at::randn({256, 512}), b = at::randn({512, 128});
  at::Tensor ref = at::matmul(a, b);
  at::Tensor gpu = at::matmul(a.cuda(), b.cuda()).cpu();
  // TF32 may be on for matmul; allow its ~1e-3 relative error.
  EXPECT_LT(((gpu - ref).norm() / ref.norm()).item<double>(), 2e-3);

  at::Tensor q = at::randn({2, 8, 1024, 64}), k = at::randn({2, 8, 1024, 64}), v = at::randn({2, 8, 1024, 64});
  at::Tensor att_ref = at::scaled_dot_product_attention(q.to(at::kDouble), k.to(at::kDouble), v.to(at::kDouble));
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    at::Tensor out = at::scaled_dot_product_attention(q.cuda().to(dt), k.cuda().to(dt), v.cuda().to(dt));
    double err = ((out.cpu().to(at::kDouble) - att_ref).norm() / att_ref.norm()).item<double>();
    std::printf("fused attention %s relative error vs fp64: %.3g\n", c10::toString(dt), err);
    EXPECT_LT(err, dt == at::kHalf ? 2e-3 : 2e-2);
  }
}

#ifdef DISTRI_HAVE_NCCL
TEST(GpuSmoke, NcclAllReduceOverAllGpus) {
  int n = 0;
  ASSERT_EQ(cudaGetDeviceCount(&n), cudaSuccess);
  std::vector<ncclComm_t> comms(n);
  std::vector<int> devs(n);
  for (int i = 0; i < n; ++i) devs[i] = i;
  ASSERT_EQ(ncclCommInitAll(comms.data(), n, devs.data()), ncclSuccess);
  std::vector<at::Tensor> bufs;
  for (int i = 0; i < n; ++i) bufs.push_back(at::full({4096}, float(i + 1), at::TensorOptions().device(at::kCUDA, i)));
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  for (int i = 0; i < n; ++i) {
    cudaSetDevice(i);
    ASSERT_EQ(ncclAllReduce(bufs[i].data_ptr(), bufs[i].data_ptr(), 4096, ncclFloat, ncclSum, comms[i], nullptr), ncclSuccess);
  }
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  float expect = n * (n + 1) / 2.0f;
  for (int i = 0; i < n; ++i) {
    cudaSetDevice(i);
    cudaDeviceSynchronize();
    EXPECT_EQ(bufs[i].cpu().min().item<float>(), expect);
    EXPECT_EQ(bufs[i].cpu().max().item<float>(), expect);
    ncclCommDestroy(comms[i]);
  }
  std::printf("NCCL all-reduce over %d GPU(s): OK\n", n);
}
#endif

}  // namespace
}  // namespace distri::test
