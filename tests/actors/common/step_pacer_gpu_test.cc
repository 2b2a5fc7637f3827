#include "actors/common/step_pacer.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <vector>

namespace distri {
namespace {

// GPU (label gpu): after Queued() returns k, step k's work has finished on the device while the
// step after it may still run: the host is exactly one step ahead.
TEST(StepPacerGpu, HostStaysOneStepAhead) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const c10::Device dev(c10::kCUDA, 0);
  StepPacer pacer(dev);
  at::Tensor a = at::randn({2048, 2048}, at::TensorOptions().device(dev));
  std::vector<cudaEvent_t> step_done;
  for (int step = 1; step <= 6; ++step) {
    at::Tensor x = a;
    for (int k = 0; k < 8; ++k) x = at::mm(x, a).div_(64);  // a few ms of work
    cudaEvent_t ev;
    ASSERT_EQ(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(ev, c10::cuda::getCurrentCUDAStream(0).stream()), cudaSuccess);
    step_done.push_back(ev);
    Result<int> done = pacer.Queued();
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    EXPECT_EQ(*done, step - 1);
    if (step > 1) EXPECT_EQ(cudaEventQuery(step_done[step - 2]), cudaSuccess) << "step " << step - 1;
  }
  EXPECT_EQ(*pacer.Finish(), 6);
  EXPECT_EQ(cudaEventQuery(step_done.back()), cudaSuccess);
  for (cudaEvent_t ev : step_done) cudaEventDestroy(ev);
}

}  // namespace
}  // namespace distri
