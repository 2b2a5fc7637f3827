#include "tests/runtime/channel/nccl_cases.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <vector>

namespace distri::channel::testing {
namespace {

#define CUDA_OK(expr) ASSERT_EQ(cudaSuccess, (expr)) << #expr

int CurrentDevice() {
  int device = -1;
  cudaGetDevice(&device);
  return device;
}

}  // namespace

void StreamOrderedChain(Channel& ch) {
  const Device dev = Device::Cuda(CurrentDevice());
  const int64_t n = ch.world_size();
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const size_t count = 4096;
  int32_t* d = nullptr;
  CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&d), count * sizeof(int32_t)));
  std::vector<int32_t> host(count, 1);
  CUDA_OK(cudaMemcpyAsync(d, host.data(), count * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
  constexpr int kSteps = 10;
  std::vector<Handle> handles;
  for (int i = 0; i < kSteps; ++i) {
    Handle h = ch.AllReduceAsync(ConstBuffer(d, count, DType::kI32, dev), Buffer{d, count, DType::kI32, dev},
                                 ReduceOp::kSum, stream);
    ASSERT_TRUE(h.StreamWait(stream).ok()) << h.what();
    handles.push_back(h);
  }
  CUDA_OK(cudaMemcpyAsync(host.data(), d, count * sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  int64_t expect = 1;
  for (int i = 0; i < kSteps; ++i) expect *= n;
  EXPECT_EQ(static_cast<int32_t>(expect), host[0]);
  EXPECT_EQ(static_cast<int32_t>(expect), host[count - 1]);
  for (Handle& h : handles) EXPECT_TRUE(h.Wait(std::chrono::seconds(20)).ok()) << h.what();
  cudaFree(d);
  cudaStreamDestroy(stream);
}

void GraphCaptureReplay(Channel& ch) {
  const Device dev = Device::Cuda(CurrentDevice());
  const auto n = static_cast<size_t>(ch.world_size());
  const auto rank = static_cast<size_t>(ch.rank());
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const size_t count = 1000;
  float *in = nullptr, *gathered = nullptr, *sum = nullptr;
  CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&in), count * sizeof(float)));
  CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&gathered), n * count * sizeof(float)));
  CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&sum), count * sizeof(float)));
  auto value = [](size_t r, int iteration, size_t i) {
    return static_cast<float>(r * 100 + static_cast<size_t>(iteration) * 10 + i % 7);
  };
  const ConstBuffer send(in, count, DType::kF32, dev);
  const Buffer gather_out{gathered, n * count, DType::kF32, dev};
  const Buffer sum_out{sum, count, DType::kF32, dev};

  // An eager round first: the channel's events and connections exist before the capture.
  ASSERT_TRUE(ch.AllReduce(send, sum_out, ReduceOp::kSum, stream).ok());

  cudaGraph_t graph = nullptr;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  Handle g = ch.AllGatherAsync(send, gather_out, stream);
  Handle s = ch.AllReduceAsync(send, sum_out, ReduceOp::kSum, stream);
  const Status gj = g.StreamWait(stream);
  const Status sj = s.StreamWait(stream);
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  ASSERT_TRUE(gj.ok()) << gj.ToString();
  ASSERT_TRUE(sj.ok()) << sj.ToString();
  ASSERT_EQ(cudaSuccess, end) << cudaGetErrorString(end);
  EXPECT_TRUE(g.Done());
  const Status w = s.Wait(std::chrono::seconds(1));
  EXPECT_EQ(StatusCode::kFailedPrecondition, w.code()) << w.ToString();
  EXPECT_NE(std::string::npos, w.message().find("CUDA graph")) << w.message();

  cudaGraphExec_t exec = nullptr;
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  std::vector<float> host(count), host_gather(n * count), host_sum(count);
  for (int iteration = 0; iteration < 3; ++iteration) {
    SCOPED_TRACE("replay " + std::to_string(iteration));
    for (size_t i = 0; i < count; ++i) host[i] = value(rank, iteration, i);
    CUDA_OK(cudaMemcpyAsync(in, host.data(), count * sizeof(float), cudaMemcpyHostToDevice, stream));
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaMemcpyAsync(host_gather.data(), gathered, n * count * sizeof(float), cudaMemcpyDeviceToHost, stream));
    CUDA_OK(cudaMemcpyAsync(host_sum.data(), sum, count * sizeof(float), cudaMemcpyDeviceToHost, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    for (size_t r = 0; r < n; ++r) {
      for (size_t i = 0; i < count; i += 37) {
        ASSERT_EQ(value(r, iteration, i), host_gather[r * count + i]) << "rank " << r << " element " << i;
      }
    }
    for (size_t i = 0; i < count; i += 37) {
      float expect = 0;
      for (size_t r = 0; r < n; ++r) expect += value(r, iteration, i);
      ASSERT_EQ(expect, host_sum[i]) << "element " << i;
    }
  }
  // Eager operations still work after the capture.
  EXPECT_TRUE(ch.Barrier().ok());
  EXPECT_TRUE(ch.AllReduce(send, sum_out, ReduceOp::kSum, stream).ok());
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaFree(in);
  cudaFree(gathered);
  cudaFree(sum);
  cudaStreamDestroy(stream);
}

void CollectiveMemoryAllGather(Channel& ch) {
  const Device dev = Device::Cuda(CurrentDevice());
  const auto n = static_cast<size_t>(ch.world_size());
  const auto rank = static_cast<size_t>(ch.rank());
  EXPECT_EQ(StatusCode::kInvalidArgument, ch.AllocateCollectiveMemory(0).status().code());
  const size_t count = (size_t{3} << 20) / sizeof(float) + 5;  // not a multiple of any granularity
  auto memory = ch.AllocateCollectiveMemory(n * count * sizeof(float));
  ASSERT_TRUE(memory.ok()) << memory.status().ToString();
  std::shared_ptr<void> mem = std::move(memory).value();
  std::printf("rank %zu: collective memory %s\n", rank, mem ? "in a symmetric window" : "unavailable (cudaMalloc)");
  // Our GPU machines have NVLink between all GPUs: the window must exist there (elsewhere this
  // fails and the rest of the case still checks the fallback's all-gathers).
  EXPECT_NE(nullptr, mem) << "no symmetric window on rank " << rank;
  float* all = static_cast<float*>(mem.get());
  if (all == nullptr) CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&all), n * count * sizeof(float)));
  float* source = nullptr;
  CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&source), count * sizeof(float)));
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto value = [](size_t r, int iteration, size_t i) {
    return static_cast<float>(r * 1000 + static_cast<size_t>(iteration) * 10 + i % 7);
  };
  float* slot = all + rank * count;
  const ConstBuffer send(slot, count, DType::kF32, dev);
  const Buffer recv{all, n * count, DType::kF32, dev};
  std::vector<float> host(count), gathered(n * count);
  auto check = [&](int iteration) {
    CUDA_OK(cudaMemcpyAsync(gathered.data(), all, n * count * sizeof(float), cudaMemcpyDeviceToHost, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    for (size_t r = 0; r < n; ++r) {
      for (size_t i = 0; i < count; i += 4099) {
        ASSERT_EQ(value(r, iteration, i), gathered[r * count + i]) << "iteration " << iteration << " rank " << r;
      }
      ASSERT_EQ(value(r, iteration, count - 1), gathered[r * count + count - 1]) << "iteration " << iteration;
    }
  };
  auto fill = [&](int iteration) {
    for (size_t i = 0; i < count; ++i) host[i] = value(rank, iteration, i);
    CUDA_OK(cudaMemcpyAsync(source, host.data(), count * sizeof(float), cudaMemcpyHostToDevice, stream));
  };
  // Eager: the slot written on the stream, then gathered in place.
  fill(0);
  CUDA_OK(cudaMemcpyAsync(slot, source, count * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  const Status eager = ch.AllGather(send, recv, stream);
  ASSERT_TRUE(eager.ok()) << eager.ToString();
  check(0);
  // Captured: the slot's write and the all-gather in one graph, replayed with new data.
  cudaGraph_t graph = nullptr;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  CUDA_OK(cudaMemcpyAsync(slot, source, count * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  Handle g = ch.AllGatherAsync(send, recv, stream);
  const Status joined = g.StreamWait(stream);
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  ASSERT_TRUE(joined.ok()) << joined.ToString();
  ASSERT_EQ(cudaSuccess, end) << cudaGetErrorString(end);
  cudaGraphExec_t exec = nullptr;
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int iteration = 1; iteration <= 3; ++iteration) {
    fill(iteration);
    CUDA_OK(cudaGraphLaunch(exec, stream));
    check(iteration);
    ASSERT_TRUE(ch.Barrier().ok());  // no rank overwrites a slot that a peer still reads
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  if (mem) {
    mem.reset();  // deregistered and freed
  } else {
    cudaFree(all);
  }
  EXPECT_TRUE(ch.Barrier().ok());
  EXPECT_TRUE(ch.status().ok()) << ch.status().ToString();
  cudaFree(source);
  cudaStreamDestroy(stream);
}

void RejectsForeignBuffers(Channel& ch) {
  const int device = CurrentDevice();
  EXPECT_TRUE(ch.SupportsDevice(Device::Cuda(device)));
  EXPECT_FALSE(ch.SupportsDevice(Device::Cpu()));
  EXPECT_FALSE(ch.SupportsDevice(Device::Cuda(device + 1)));
  std::vector<float> host(4 * static_cast<size_t>(ch.world_size()));
  Status s = ch.AllReduce(CpuBuffer<float>(host.data(), 4), CpuBuffer(host.data(), 4));
  EXPECT_EQ(StatusCode::kInvalidArgument, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("does not accept buffers on cpu")) << s.message();
  s = ch.Send(ConstBuffer(host.data(), 1, DType::kF32, Device::Cuda(device + 1)), 0, 0);
  EXPECT_NE(std::string::npos, s.message().find("cuda:" + std::to_string(device + 1))) << s.message();
  EXPECT_TRUE(ch.status().ok());
  EXPECT_TRUE(ch.Barrier().ok());
}

}  // namespace distri::channel::testing
