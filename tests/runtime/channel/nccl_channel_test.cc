// The NCCL backend on one GPU (label gpu): a gang of one rank runs the conformance suite with
// device buffers, the CUDA-only cases (stream ordering, graph capture and replay, device
// checks) and the abort semantics. Multi-GPU gangs: nccl_multigpu_test.cc.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/channel/factory.h"
#include "tests/runtime/channel/conformance.h"
#include "tests/runtime/channel/device_buffers.h"
#include "tests/runtime/channel/nccl_cases.h"

namespace distri::channel {
namespace {

using std::chrono::milliseconds;

bool HaveGpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

std::unique_ptr<Channel> SingleRank(MemoryRendezvous& rendezvous) {
  EXPECT_EQ(cudaSuccess, cudaSetDevice(0));
  ChannelOptions options;
  options.connect_timeout = milliseconds(60000);
  options.op_timeout = milliseconds(60000);
  auto ch = MakeChannel(Backend::kNccl, 0, 1, rendezvous, options);
  EXPECT_TRUE(ch.ok()) << ch.status().ToString();
  return ch.ok() ? std::move(ch).value() : nullptr;
}

#define REQUIRE_GPU() \
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device"

// Runs one of the CUDA-only cases (nccl_cases.h) on a fresh gang of one.
void OnSingleRank(void (*run_case)(Channel&)) {
  MemoryRendezvous rendezvous;
  auto ch = SingleRank(rendezvous);
  ASSERT_NE(nullptr, ch);
  run_case(*ch);
}

TEST(NcclSingleGpu, IsAnAvailableBackend) {
  const auto built = AvailableBackends();
  EXPECT_NE(built.end(), std::find(built.begin(), built.end(), Backend::kNccl));
  REQUIRE_GPU();
  MemoryRendezvous rendezvous;
  auto ch = SingleRank(rendezvous);
  ASSERT_NE(nullptr, ch);
  EXPECT_EQ("nccl", ch->backend());
  EXPECT_EQ(0, ch->rank());
  EXPECT_EQ(1, ch->world_size());
}

TEST(NcclSingleGpu, ConformanceWithDeviceBuffers) {
  REQUIRE_GPU();
  MemoryRendezvous rendezvous;
  auto ch = SingleRank(rendezvous);
  ASSERT_NE(nullptr, ch);
  auto mirrored = testing::WithDeviceBuffers(std::move(ch));
  testing::RunAllSharedCases(*mirrored, testing::NcclTraits());
}

TEST(NcclSingleGpu, StreamOrderedChain) {
  REQUIRE_GPU();
  OnSingleRank(testing::StreamOrderedChain);
}

TEST(NcclSingleGpu, GraphCaptureReplay) {
  REQUIRE_GPU();
  OnSingleRank(testing::GraphCaptureReplay);
}

TEST(NcclSingleGpu, RejectsForeignBuffers) {
  REQUIRE_GPU();
  OnSingleRank(testing::RejectsForeignBuffers);
}

// Abort fails the queued (deferred) Send/Recv and every later operation with the reason;
// sticky; the first reason is kept.
TEST(NcclSingleGpu, AbortFailsPendingAndFutureOperations) {
  REQUIRE_GPU();
  MemoryRendezvous rendezvous;
  auto ch = SingleRank(rendezvous);
  ASSERT_NE(nullptr, ch);
  const Device dev = Device::Cuda(0);
  float* d = nullptr;
  ASSERT_EQ(cudaSuccess, cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(float)));
  Handle recv = ch->RecvAsync(Buffer{d, 32, DType::kF32, dev}, 0, 1);
  Handle send = ch->SendAsync(ConstBuffer(d + 32, 32, DType::kF32, dev), 0, 1);
  ch->Abort("test: giving up");
  for (Handle* h : {&recv, &send}) {
    const Status s = h->Wait(milliseconds(5000));
    EXPECT_EQ(StatusCode::kAborted, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("test: giving up")) << s.message();
  }
  const auto start = std::chrono::steady_clock::now();
  const Status after = ch->AllReduce(ConstBuffer(d, 8, DType::kF32, dev), Buffer{d, 8, DType::kF32, dev});
  EXPECT_EQ(StatusCode::kAborted, after.code()) << after.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500));
  EXPECT_EQ(StatusCode::kAborted, ch->Barrier().code());
  ch->Abort("second");
  EXPECT_NE(std::string::npos, ch->status().message().find("test: giving up")) << ch->status().message();
  ch.reset();
  cudaFree(d);
}

// A channel destroyed with a queued operation fails it with Aborted naming the destruction;
// a clean one is destroyed quietly and its Handles stay valid.
TEST(NcclSingleGpu, DestroyWithPendingAndAfterCompletion) {
  REQUIRE_GPU();
  const Device dev = Device::Cuda(0);
  float* d = nullptr;
  ASSERT_EQ(cudaSuccess, cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(float)));
  {
    MemoryRendezvous rendezvous;
    auto ch = SingleRank(rendezvous);
    ASSERT_NE(nullptr, ch);
    Handle recv = ch->RecvAsync(Buffer{d, 32, DType::kF32, dev}, 0, 1);
    ch.reset();
    const Status s = recv.Wait(milliseconds(5000));
    EXPECT_EQ(StatusCode::kAborted, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("destroyed")) << s.message();
  }
  {
    MemoryRendezvous rendezvous;
    auto ch = SingleRank(rendezvous);
    ASSERT_NE(nullptr, ch);
    Handle h = ch->AllReduceAsync(ConstBuffer(d, 8, DType::kF32, dev), Buffer{d, 8, DType::kF32, dev});
    ASSERT_TRUE(h.Wait(milliseconds(20000)).ok());
    ch.reset();
    EXPECT_TRUE(h.Wait(milliseconds(0)).ok());
  }
  cudaFree(d);
}

TEST(NcclSingleGpu, MalformedUniqueIdIsAClearError) {
  REQUIRE_GPU();
  ASSERT_EQ(cudaSuccess, cudaSetDevice(0));
  MemoryRendezvous rendezvous;
  ASSERT_TRUE(rendezvous.Put("distri/channel/nccl_id", "not an id").ok());
  ChannelOptions options;
  options.connect_timeout = milliseconds(2000);
  const Status s = MakeChannel(Backend::kNccl, 1, 2, rendezvous, options).status();
  EXPECT_EQ(StatusCode::kParseError, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("is every rank using the nccl backend")) << s.message();
  MemoryRendezvous empty;  // rank 0 never comes
  const Status late = MakeChannel(Backend::kNccl, 1, 2, empty, options).status();
  EXPECT_EQ(StatusCode::kDeadlineExceeded, late.code()) << late.ToString();
}

}  // namespace
}  // namespace distri::channel
