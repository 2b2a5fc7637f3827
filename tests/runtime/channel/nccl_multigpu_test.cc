// The NCCL backend across processes, one per GPU (label multigpu): rank r of a gang is this
// binary re-started (process_gang.h) with GPU r current, meeting through a TCP rendezvous
// served by the test process. The conformance suite with device buffers, the CUDA-only cases
// (graph capture across ranks), the destructive cases, an abort in the middle of a
// collective and a dead peer. Gangs of 2 and 4; skipped when fewer GPUs are visible.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "runtime/channel/factory.h"
#include "runtime/channel/tcp_rendezvous.h"
#include "tests/runtime/channel/conformance.h"
#include "tests/runtime/channel/device_buffers.h"
#include "tests/runtime/channel/nccl_cases.h"
#include "tests/runtime/channel/process_gang.h"

namespace distri::channel {
namespace {

using std::chrono::milliseconds;

constexpr const char* kChildFilter = "NcclChild.Run";
const milliseconds kGangTimeout(180000);

int GpuCount() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

// ------------------------------------------------------------------------- the child side

// Ranks 1.. wait in a large all-reduce that rank 0 never joins; rank 0 aborts its channel
// (with a pending Recv of its own). Everyone fails fast with the reason, nobody hangs.
void AbortMidCollective(Channel& ch) {
  const Device dev = Device::Cuda(ch.rank());
  const size_t count = size_t{1} << 22;
  float* d = nullptr;
  ASSERT_EQ(cudaSuccess, cudaMalloc(reinterpret_cast<void**>(&d), count * sizeof(float)));
  ASSERT_TRUE(ch.Barrier().ok());
  const auto start = std::chrono::steady_clock::now();
  if (ch.rank() == 0) {
    Handle pending = ch.RecvAsync(Buffer{d, 16, DType::kF32, dev}, 1, 7);
    EXPECT_FALSE(pending.Done());  // launched (Done launches deferred work), stuck on rank 1
    std::this_thread::sleep_for(milliseconds(500));
    ch.Abort("test: rank 0 gives up mid-collective");
    const Status s = pending.Wait(milliseconds(5000));
    EXPECT_EQ(StatusCode::kAborted, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("gives up")) << s.message();
    EXPECT_EQ(StatusCode::kAborted, ch.status().code());
  } else {
    const Status s = ch.AllReduce(ConstBuffer(d, count, DType::kF32, dev), Buffer{d, count, DType::kF32, dev});
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kAborted) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("rank 0")) << s.message();
    EXPECT_NE(std::string::npos, s.message().find("gives up")) << s.message();
    EXPECT_LT(took, std::chrono::seconds(15)) << "op_timeout is 120 s: the abort must be what ended it";
    EXPECT_FALSE(ch.status().ok());
    EXPECT_FALSE(ch.Barrier().ok()) << "sticky";
  }
  cudaFree(d);
}

// One rank is stuck in a barrier when rank 1's process dies: Unavailable naming rank 1.
void PeerDeath(Channel& ch) {
  if (ch.rank() == 1) {
    ASSERT_TRUE(ch.Barrier().ok());
    std::this_thread::sleep_for(milliseconds(200));
    std::_Exit(3);  // dies without closing anything
  }
  ASSERT_TRUE(ch.Barrier().ok());
  const auto start = std::chrono::steady_clock::now();
  const Status s = ch.Barrier();
  const auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  EXPECT_EQ(StatusCode::kUnavailable, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("rank 1")) << s.message();
  EXPECT_LT(took, milliseconds(15000));
  std::printf("rank %d noticed the death of rank 1 after %lld ms: %s\n", ch.rank(),
              static_cast<long long>(took.count()), s.ToString().c_str());
}

class NcclChild : public testing::ChildRankTest {};

TEST_F(NcclChild, Run) {
  ASSERT_EQ(cudaSuccess, cudaSetDevice(env_.rank)) << "one GPU per rank";
  auto rv = TcpRendezvousClient::Connect(env_.master_addr, env_.master_port, milliseconds(20000));
  ASSERT_TRUE(rv.ok()) << rv.status().ToString();
  std::unique_ptr<Rendezvous> rendezvous = std::move(rv).value();
  ChannelOptions options;
  options.rendezvous_prefix = "test";
  options.connect_timeout = milliseconds(60000);
  options.op_timeout = milliseconds(120000);
  options.nccl_monitor_host = "127.0.0.1";
  options.nccl_zero_sm = mode_ == "collective_memory";
  std::unique_ptr<Channel> ch = MakeRankChannel(Backend::kNccl, *rendezvous, options);
  ASSERT_NE(nullptr, ch);
  ASSERT_EQ("nccl", ch->backend());

  if (mode_ == "shared") {
    testing::RejectsForeignBuffers(*ch);
    testing::StreamOrderedChain(*ch);
    ASSERT_TRUE(ch->Barrier().ok());
    ch = testing::WithDeviceBuffers(std::move(ch));
    testing::RunAllSharedCases(*ch, testing::NcclTraits());
  } else if (mode_ == "graph") {
    testing::GraphCaptureReplay(*ch);
  } else if (mode_ == "collective_memory") {
    testing::CollectiveMemoryAllGather(*ch);
  } else if (destructive_ != nullptr) {
    ch = testing::WithDeviceBuffers(std::move(ch));
    destructive_->run(ch);
  } else if (mode_ == "abort_mid_collective") {
    AbortMidCollective(*ch);
  } else if (mode_ == "peer_death") {
    PeerDeath(*ch);
  } else {
    FAIL() << "unknown child mode '" << mode_ << "'";
  }
}

// ------------------------------------------------------------------------ the parent side

struct GangSpec {
  std::string mode;
  int world = 2;
  std::map<int, int> expected_exit = {};  // rank -> exit code (default 0)
};

void RunGang(const GangSpec& spec) {
  if (GpuCount() < spec.world) {
    GTEST_SKIP() << "needs " << spec.world << " GPUs, " << GpuCount() << " visible";
  }
  std::unique_ptr<TcpRendezvousServer> server = testing::StartRendezvousServer();
  ASSERT_NE(nullptr, server);
  const uint16_t port = server->port();
  const auto exits = testing::RunRanks(spec.world, kChildFilter, [&](int rank) {
    return testing::ChildLaunchEnv(spec.mode, rank, spec.world, port);
  }, kGangTimeout);
  testing::ExpectExits(exits, spec.expected_exit);
}

class NcclShared : public ::testing::TestWithParam<int> {};

TEST_P(NcclShared, EveryCaseAcrossProcesses) { RunGang({.mode = "shared", .world = GetParam()}); }
TEST_P(NcclShared, GraphCaptureReplay) { RunGang({.mode = "graph", .world = GetParam()}); }
TEST_P(NcclShared, CollectiveMemoryAllGather) { RunGang({.mode = "collective_memory", .world = GetParam()}); }
TEST_P(NcclShared, AbortMidCollective) { RunGang({.mode = "abort_mid_collective", .world = GetParam()}); }

INSTANTIATE_TEST_SUITE_P(Gpus, NcclShared, ::testing::Values(2, 4),
                         [](const auto& info) { return "world" + std::to_string(info.param); });

class NcclDestructive : public ::testing::TestWithParam<testing::DestructiveParam> {};

TEST_P(NcclDestructive, Case) {
  RunGang({.mode = testing::DestructiveMode(std::get<0>(GetParam())), .world = std::get<1>(GetParam())});
}

INSTANTIATE_TEST_SUITE_P(Conformance, NcclDestructive, ::testing::ValuesIn(testing::DestructiveParams({2, 4})),
                         testing::DestructiveParamName);

TEST(NcclMultiProcess, DeadPeerIsNoticed) {
  RunGang({.mode = "peer_death", .world = 2, .expected_exit = {{1, 3}}});
}

}  // namespace
}  // namespace distri::channel
