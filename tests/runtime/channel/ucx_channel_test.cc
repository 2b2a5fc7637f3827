// The UCX backend: the conformance suite with every rank in its own process (this binary
// re-started per rank, see process_gang.h), talking TCP over 127.0.0.1; failure cases (abort,
// timeouts, a peer process that dies); the torchrun-style launch; bad rendezvous records.
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "runtime/channel/factory.h"
#include "runtime/channel/launch_env.h"
#include "runtime/channel/socket_util.h"
#include "runtime/channel/tcp_rendezvous.h"
#include "runtime/channel/ucx/ucx_address.h"
#include "tests/runtime/channel/conformance.h"
#include "tests/runtime/channel/process_gang.h"

namespace distri::channel {
namespace {

using std::chrono::milliseconds;

constexpr const char* kChildFilter = "UcxChild.Run";
// Loopback TCP between processes (UCX's shared-memory transports are left out on purpose, so
// that this is the network path).
constexpr const char* kTcpTransports = "tcp,self";
const milliseconds kGangTimeout(60000);

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// ------------------------------------------------------------------------- the child side

// One rank of a multi-process test. Skipped unless started by RunGang below.
class UcxChild : public testing::ChildRankTest {};

TEST_F(UcxChild, Run) {
  std::unique_ptr<Rendezvous> rendezvous;
  if (Getenv("DISTRI_TEST_HOSTED") == "1") {  // rank 0 serves, as with torchrun
    auto rv = ConnectLaunchRendezvous(env_, milliseconds(20000));
    ASSERT_TRUE(rv.ok()) << rv.status().ToString();
    rendezvous = std::move(rv).value();
  } else {  // the test process serves
    auto rv = TcpRendezvousClient::Connect(env_.master_addr, env_.master_port, milliseconds(20000));
    ASSERT_TRUE(rv.ok()) << rv.status().ToString();
    rendezvous = std::move(rv).value();
  }
  ChannelOptions options;
  options.rendezvous_prefix = "test";
  options.connect_timeout = milliseconds(20000);
  options.op_timeout = milliseconds(20000);
  options.ucx_transports = Getenv("DISTRI_TEST_UCX_TLS");
  std::unique_ptr<Channel> ch = MakeRankChannel(Backend::kUcx, *rendezvous, options);
  ASSERT_NE(nullptr, ch);
  ASSERT_EQ("ucx", ch->backend());

  if (mode_ == "shared") {
    testing::RunAllSharedCases(*ch);
  } else if (destructive_ != nullptr) {
    destructive_->run(ch);
  } else if (mode_ == "peer_death") {
    int32_t go = 1;
    if (env_.rank == 1) {
      ASSERT_TRUE(ch->Recv(Buffer{&go, 1, DType::kI32}, 0, 1).ok());
      std::this_thread::sleep_for(milliseconds(100));
      std::_Exit(3);  // dies without closing anything
    }
    ASSERT_TRUE(ch->Send(ConstBuffer(&go, 1, DType::kI32), 1, 1).ok());
    const auto start = std::chrono::steady_clock::now();
    const Status s = ch->RecvAsync(Buffer{&go, 1, DType::kI32}, 1, 2).Wait(milliseconds(20000));
    const auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
    EXPECT_EQ(StatusCode::kUnavailable, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("rank 1")) << s.message();
    std::printf("rank 0 noticed the death of rank 1 after %lld ms: %s\n",
                static_cast<long long>(took.count()), s.ToString().c_str());
    EXPECT_EQ(StatusCode::kUnavailable, ch->status().code());
    EXPECT_EQ(StatusCode::kUnavailable, ch->Barrier().code()) << "sticky";
  } else if (mode_ == "launch") {
    int64_t v = env_.rank + 1, sum = 0;
    ASSERT_TRUE(ch->AllReduce(ConstBuffer(&v, 1, DType::kI64), Buffer{&sum, 1, DType::kI64}).ok());
    const int64_t n = env_.world_size;
    EXPECT_EQ(n * (n + 1) / 2, sum);
  } else {
    FAIL() << "unknown child mode '" << mode_ << "'";
  }
}

// ------------------------------------------------------------------------ the parent side

struct GangSpec {
  std::string mode;
  int world = 2;
  bool hosted = false;                     // rank 0 serves the rendezvous (torchrun style)
  std::map<int, int> expected_exit = {};   // rank -> exit code (default 0)
  std::string transports = kTcpTransports;
};

void RunGang(const GangSpec& spec) {
  std::unique_ptr<TcpRendezvousServer> server;
  uint16_t port = 0;
  if (spec.hosted) {
    { auto probe = ListenTcp("127.0.0.1", 0, &port); ASSERT_TRUE(probe.ok()); }  // a free port
  } else {
    server = testing::StartRendezvousServer();
    ASSERT_NE(nullptr, server);
    port = server->port();
  }
  const auto exits = testing::RunRanks(spec.world, kChildFilter, [&](int rank) {
    std::vector<std::string> env = testing::ChildLaunchEnv(spec.mode, rank, spec.world, port);
    env.insert(env.end(), {"DISTRI_TEST_UCX_TLS=" + spec.transports,
                           "DISTRI_TEST_HOSTED=" + std::string(spec.hosted ? "1" : "0"),
                           "UCX_WARN_UNUSED_ENV_VARS=n"});
    if (spec.transports.find("tcp") != std::string::npos) env.push_back("UCX_NET_DEVICES=lo");
    // Broken gangs leave unmatched messages behind, which UCX reports as warnings on exit.
    if (spec.mode != "shared") env.push_back("UCX_LOG_LEVEL=error");
    return env;
  }, kGangTimeout);
  testing::ExpectExits(exits, spec.expected_exit);
}

// (world size, UCX transports): TCP over 127.0.0.1.
class UcxShared : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(UcxShared, EveryCaseAcrossProcesses) {
  RunGang({.mode = "shared", .world = std::get<0>(GetParam()), .transports = std::get<1>(GetParam())});
}

INSTANTIATE_TEST_SUITE_P(
    Tcp, UcxShared, ::testing::Combine(::testing::Values(1, 2, 3, 4), ::testing::Values(kTcpTransports)),
    [](const auto& info) { return "world" + std::to_string(std::get<0>(info.param)); });

// The backend asks for UCX's peer failure detection; UCX 1.13's shared-memory transports do not
// offer it, so a gang restricted to them fails to connect, with an error that says why.
TEST(UcxInProcess, TransportsWithoutFailureDetectionAreRefusedClearly) {
  MemoryRendezvous rendezvous;
  ChannelOptions options;
  options.ucx_transports = "sm";
  options.connect_timeout = milliseconds(2000);
  std::vector<Status> got(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] { got[static_cast<size_t>(r)] = MakeChannel(Backend::kUcx, r, 2, rendezvous, options).status(); });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : got) {
    if (s.ok()) GTEST_SKIP() << "this UCX offers failure detection over shared memory";
    EXPECT_EQ(StatusCode::kUnavailable, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("peer failure detection")) << s.message();
  }
}

class UcxDestructive : public ::testing::TestWithParam<testing::DestructiveParam> {};

TEST_P(UcxDestructive, Case) {
  RunGang({.mode = testing::DestructiveMode(std::get<0>(GetParam())), .world = std::get<1>(GetParam())});
}

INSTANTIATE_TEST_SUITE_P(Conformance, UcxDestructive, ::testing::ValuesIn(testing::DestructiveParams({2, 3})),
                         testing::DestructiveParamName);

TEST(UcxMultiProcess, DeadPeerIsNoticed) {
  RunGang({.mode = "peer_death", .world = 2, .expected_exit = {{1, 3}}});
}

TEST(UcxMultiProcess, TorchrunStyleLaunch) {
  RunGang({.mode = "launch", .world = 3, .hosted = true, .expected_exit = {}});
}

// ------------------------------------------------------------------------- in one process

TEST(UcxInProcess, TwoRanksInThreads) {
  MemoryRendezvous rendezvous;
  ChannelOptions options;
  options.ucx_transports = "self,tcp";
  std::vector<std::unique_ptr<Channel>> gang(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto ch = MakeChannel(Backend::kUcx, r, 2, rendezvous, options);
      ASSERT_TRUE(ch.ok()) << ch.status().ToString();
      gang[static_cast<size_t>(r)] = std::move(ch).value();
    });
  }
  for (auto& t : threads) t.join();
  threads.clear();
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      ASSERT_NE(nullptr, gang[static_cast<size_t>(r)]);
      std::vector<float> v(1000, static_cast<float>(r + 1));
      ASSERT_TRUE(gang[static_cast<size_t>(r)]->AllReduce(CpuBuffer<float>(v.data(), v.size()), CpuBuffer(v.data(), v.size())).ok());
      EXPECT_EQ(3.0f, v[999]);
    });
  }
  for (auto& t : threads) t.join();
}

TEST(UcxInProcess, RejectsBadRendezvousRecords) {
  ChannelOptions options;
  options.connect_timeout = milliseconds(500);
  options.ucx_transports = "self,tcp";
  auto attempt = [&](const std::string& record_of_rank1) {
    MemoryRendezvous rv;
    EXPECT_TRUE(rv.Put("distri/channel/ucx/1", record_of_rank1).ok());
    return MakeChannel(Backend::kUcx, 0, 2, rv, options).status();
  };
  Status s = attempt("garbage");
  EXPECT_EQ(StatusCode::kParseError, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("UCX address record of rank 1")) << s.message();
  std::string good = ucx::EncodeAddressRecord(1, 2, std::string(100, 'a'));
  std::string corrupt = good;
  corrupt[30] ^= 1;
  s = attempt(corrupt);
  EXPECT_NE(std::string::npos, s.message().find("checksum mismatch")) << s.message();
  s = attempt(good.substr(0, good.size() - 1));
  EXPECT_NE(std::string::npos, s.message().find("header announces")) << s.message();
  s = attempt(ucx::EncodeAddressRecord(1, 3, "addr"));
  EXPECT_EQ(StatusCode::kInvalidArgument, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("world_size 3, this rank has 2")) << s.message();
  s = attempt(ucx::EncodeAddressRecord(0, 2, "addr"));
  EXPECT_NE(std::string::npos, s.message().find("the record says rank 0")) << s.message();
  s = attempt("DUCX" + std::string(30, '\xff'));
  EXPECT_EQ(StatusCode::kParseError, s.code()) << s.ToString();
  // The local backend's record is not a UCX one.
  s = attempt("12345:00112233445566778899aabbccddeeff");
  EXPECT_NE(std::string::npos, s.message().find("is every rank using the ucx backend")) << s.message();
  // Nobody else shows up.
  MemoryRendezvous empty;
  s = MakeChannel(Backend::kUcx, 0, 2, empty, options).status();
  EXPECT_EQ(StatusCode::kDeadlineExceeded, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("rank 1")) << s.message();
}

}  // namespace
}  // namespace distri::channel
