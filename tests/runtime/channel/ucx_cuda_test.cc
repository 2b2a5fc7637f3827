// The UCX backend with CUDA buffers (staged through pinned host memory): two ranks as threads
// of one process on GPU 0 (and GPU 1 when there is one). Needs a GPU: label gpu.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <thread>

#include "runtime/channel/factory.h"
#include "runtime/channel/reduce.h"

namespace distri::channel {
namespace {

using std::chrono::milliseconds;

#define CUDA_OK(expr) ASSERT_EQ(cudaSuccess, (expr)) << #expr

std::vector<std::unique_ptr<Channel>> UcxPair() {
  MemoryRendezvous rendezvous;
  ChannelOptions options;
  options.ucx_transports = "tcp,self";
  std::vector<std::unique_ptr<Channel>> gang(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto ch = MakeChannel(Backend::kUcx, r, 2, rendezvous, options);
      EXPECT_TRUE(ch.ok()) << ch.status().ToString();
      if (ch.ok()) gang[static_cast<size_t>(r)] = std::move(ch).value();
    });
  }
  for (auto& t : threads) t.join();
  return gang;
}

int DeviceOf(int rank) {
  int n = 0;
  cudaGetDeviceCount(&n);
  return n > 1 ? rank : 0;
}

void RankBody(Channel& ch) {
  const int dev = DeviceOf(ch.rank());
  CUDA_OK(cudaSetDevice(dev));
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const size_t n = 1 << 20;
  void* d_send = nullptr;
  void* d_recv = nullptr;
  CUDA_OK(cudaMalloc(&d_send, n * sizeof(float)));
  CUDA_OK(cudaMalloc(&d_recv, 2 * n * sizeof(float)));
  std::vector<float> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = static_cast<float>(ch.rank() * 10 + static_cast<int>(i % 5));
  // Stream order: the upload is queued on `stream` and the gather must read after it.
  CUDA_OK(cudaMemcpyAsync(d_send, h.data(), n * sizeof(float), cudaMemcpyHostToDevice, stream));
  const Device cuda = Device::Cuda(dev);
  Handle g = ch.AllGatherAsync(ConstBuffer(d_send, n, DType::kF32, cuda),
                               Buffer{d_recv, 2 * n, DType::kF32, cuda}, stream);
  ASSERT_TRUE(g.StreamWait(stream).ok());
  std::vector<float> back(2 * n);
  CUDA_OK(cudaMemcpyAsync(back.data(), d_recv, 2 * n * sizeof(float), cudaMemcpyDeviceToHost, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  for (int r = 0; r < 2; ++r) {
    for (size_t i = 0; i < n; i += 4099) {
      ASSERT_EQ(static_cast<float>(r * 10 + static_cast<int>(i % 5)), back[static_cast<size_t>(r) * n + i]);
    }
  }
  // In-place all-reduce of f16 (synchronous form: ready for the host on return).
  std::vector<uint16_t> hh(n);
  for (size_t i = 0; i < n; ++i) hh[i] = FloatToHalf(static_cast<float>(ch.rank() + 1));
  CUDA_OK(cudaMemcpy(d_send, hh.data(), n * 2, cudaMemcpyHostToDevice));
  ASSERT_TRUE(ch.AllReduce(ConstBuffer(d_send, n, DType::kF16, cuda), Buffer{d_send, n, DType::kF16, cuda}).ok());
  CUDA_OK(cudaMemcpy(hh.data(), d_send, n * 2, cudaMemcpyDeviceToHost));
  EXPECT_EQ(3.0f, HalfToFloat(hh[0]));
  EXPECT_EQ(3.0f, HalfToFloat(hh[n - 1]));
  // Point to point, device to device (possibly across GPUs).
  if (ch.rank() == 0) {
    CUDA_OK(cudaMemsetAsync(d_send, 0x3f, 64 * sizeof(float), stream));
    ASSERT_TRUE(ch.Send(ConstBuffer(d_send, 64, DType::kF32, cuda), 1, 5, stream).ok());
  } else {
    CUDA_OK(cudaMemset(d_recv, 0, 64 * sizeof(float)));
    ASSERT_TRUE(ch.Recv(Buffer{d_recv, 64, DType::kF32, cuda}, 0, 5).ok());
    std::vector<uint8_t> bytes(64 * sizeof(float));
    CUDA_OK(cudaMemcpy(bytes.data(), d_recv, bytes.size(), cudaMemcpyDeviceToHost));
    for (uint8_t b : bytes) ASSERT_EQ(0x3f, b);
  }
  EXPECT_TRUE(ch.Barrier().ok());
  cudaFree(d_send);
  cudaFree(d_recv);
  cudaStreamDestroy(stream);
}

TEST(UcxCuda, StagedCollectivesAndPointToPoint) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) GTEST_SKIP() << "no CUDA device";
  auto gang = UcxPair();
  ASSERT_TRUE(gang[0] && gang[1]);
  EXPECT_TRUE(gang[0]->SupportsDevice(Device::Cuda(0)));
  std::vector<std::thread> threads;
  for (auto& ch : gang) threads.emplace_back([&ch] { RankBody(*ch); });
  for (auto& t : threads) t.join();
}

TEST(UcxCuda, BadDeviceIsAClearError) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) GTEST_SKIP() << "no CUDA device";
  auto gang = UcxPair();
  ASSERT_TRUE(gang[0] && gang[1]);
  float x = 0;
  const Status s = gang[0]->Send(ConstBuffer(&x, 1, DType::kF32, Device::Cuda(count + 3)), 1, 1);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.message().find("cudaSetDevice")) << s.ToString();
}

}  // namespace
}  // namespace distri::channel
