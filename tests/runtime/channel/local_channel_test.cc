// The local backend: the conformance suite on in-process gangs of 1-4 ranks (one thread per
// rank), plus what only the local backend checks (mismatched collectives, joining through a
// rendezvous, closed peers).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "runtime/channel/factory.h"
#include "runtime/channel/local/local_channel.h"
#include "tests/runtime/channel/conformance.h"

namespace distri::channel {
namespace {

using std::chrono::milliseconds;

// Runs fn(channel) for every rank on its own thread.
template <typename Fn>
void OnEveryRank(std::vector<std::unique_ptr<Channel>>& gang, Fn fn) {
  std::vector<std::thread> threads;
  for (auto& ch : gang) threads.emplace_back([&fn, &ch] { fn(ch); });
  for (auto& t : threads) t.join();
}

std::vector<std::unique_ptr<Channel>> Gang(int world, milliseconds op_timeout = milliseconds(20000)) {
  ChannelOptions options;
  options.op_timeout = op_timeout;
  auto gang = local::MakeLocalGang(world, options);
  EXPECT_TRUE(gang.ok()) << gang.status().ToString();
  return std::move(gang).value();
}

class LocalShared : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(LocalShared, Case) {
  const auto& [name, world] = GetParam();
  const testing::SharedCase* c = testing::FindSharedCase(name);
  ASSERT_NE(nullptr, c);
  if (world < c->min_world) GTEST_SKIP() << name << " needs " << c->min_world << " ranks";
  auto gang = Gang(world);
  OnEveryRank(gang, [&](std::unique_ptr<Channel>& ch) {
    c->run(*ch, testing::Traits{});
    EXPECT_TRUE(ch->Barrier().ok());
  });
}

std::vector<std::string> SharedNames() {
  std::vector<std::string> out;
  for (const auto& c : testing::SharedCases()) out.push_back(c.name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    Conformance, LocalShared,
    ::testing::Combine(::testing::ValuesIn(SharedNames()), ::testing::Values(1, 2, 3, 4)),
    [](const auto& info) {
      return std::get<0>(info.param) + "_world" + std::to_string(std::get<1>(info.param));
    });

class LocalDestructive : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(LocalDestructive, Case) {
  const auto& [name, world] = GetParam();
  const testing::DestructiveCase* c = testing::FindDestructiveCase(name);
  ASSERT_NE(nullptr, c);
  auto gang = Gang(world, c->op_timeout);
  OnEveryRank(gang, [&](std::unique_ptr<Channel>& ch) { c->run(ch); });
}

INSTANTIATE_TEST_SUITE_P(
    Conformance, LocalDestructive,
    ::testing::Combine(::testing::ValuesIn(testing::DestructiveCaseNames()), ::testing::Values(2, 3)),
    [](const auto& info) {
      return std::get<0>(info.param) + "_world" + std::to_string(std::get<1>(info.param));
    });

// ---- local-only behaviour

TEST(LocalChannel, MismatchedCollectivesFailOnEveryRank) {
  auto gang = Gang(2);
  std::vector<float> a(4, 1), b(8), c(8);
  Handle h0 = gang[0]->AllGatherAsync(CpuBuffer<float>(a.data(), 4), CpuBuffer(b.data(), 8));
  Handle h1 = gang[1]->AllReduceAsync(CpuBuffer<float>(c.data(), 8), CpuBuffer(c.data(), 8));
  for (Handle* h : {&h0, &h1}) {
    const Status s = h->Wait(milliseconds(2000));
    EXPECT_EQ(StatusCode::kInvalidArgument, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("does not match across ranks")) << s.message();
    EXPECT_NE(std::string::npos, s.message().find("all_gather(f32 x 4)")) << s.message();
    EXPECT_NE(std::string::npos, s.message().find("all_reduce(f32 x 8)")) << s.message();
  }
  // Not sticky: the next collective works.
  OnEveryRank(gang, [](std::unique_ptr<Channel>& ch) { EXPECT_TRUE(ch->Barrier().ok()); });
}

// The local backend has no collective memory: a null pointer (callers allocate as usual); a
// zero size is refused, and an aborted channel reports its failure.
TEST(LocalChannel, HasNoCollectiveMemory) {
  auto gang = Gang(2);
  auto none = gang[0]->AllocateCollectiveMemory(1 << 20);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(nullptr, none->get());
  const Status zero = gang[1]->AllocateCollectiveMemory(0).status();
  EXPECT_EQ(StatusCode::kInvalidArgument, zero.code()) << zero.ToString();
  EXPECT_NE(std::string::npos, zero.message().find("0 bytes")) << zero.message();
  gang[0]->Abort("test");
  EXPECT_EQ(StatusCode::kAborted, gang[0]->AllocateCollectiveMemory(64).status().code());
}

TEST(LocalChannel, PointToPointChecksDTypeToo) {
  auto gang = Gang(2);
  std::vector<float> f(4);
  std::vector<int32_t> i(4);
  Handle s = gang[0]->SendAsync(CpuBuffer<float>(f.data(), 4), 1, 3);
  const Status r = gang[1]->Recv(CpuBuffer(i.data(), 4), 0, 3);
  EXPECT_EQ(StatusCode::kInvalidArgument, r.code());
  EXPECT_NE(std::string::npos, r.message().find("expected 4 x i32, the matching send has 4 x f32")) << r.message();
  EXPECT_EQ(StatusCode::kInvalidArgument, s.Wait(milliseconds(1000)).code());
}

TEST(LocalChannel, ClosedPeerFailsFast) {
  auto gang = Gang(3);
  std::vector<float> v(3);
  Handle pending = gang[0]->RecvAsync(CpuBuffer(v.data(), 1), 2, 1);
  gang[2].reset();
  Status s = pending.Wait(milliseconds(1000));
  EXPECT_EQ(StatusCode::kUnavailable, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("rank 2 has closed its channel")) << s.message();
  EXPECT_EQ(StatusCode::kUnavailable, gang[0]->Barrier().code());
  // Ranks 0 and 1 can still talk to each other.
  Handle send = gang[1]->SendAsync(CpuBuffer<float>(v.data(), 1), 0, 2);
  EXPECT_TRUE(gang[0]->Recv(CpuBuffer(v.data() + 1, 1), 1, 2).ok());
  EXPECT_TRUE(send.Wait(milliseconds(1000)).ok());
}

TEST(LocalChannel, FactoryJoinsThroughRendezvous) {
  MemoryRendezvous rendezvous;
  std::vector<std::unique_ptr<Channel>> gang(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      auto ch = MakeChannel(Backend::kLocal, r, 3, rendezvous);
      ASSERT_TRUE(ch.ok()) << ch.status().ToString();
      gang[static_cast<size_t>(r)] = std::move(ch).value();
    });
  }
  for (auto& t : threads) t.join();
  OnEveryRank(gang, [](std::unique_ptr<Channel>& ch) {
    ASSERT_NE(nullptr, ch);
    EXPECT_EQ("local", ch->backend());
    int64_t v = ch->rank(), sum = 0;
    ASSERT_TRUE(ch->AllReduce(ConstBuffer(&v, 1, DType::kI64), Buffer{&sum, 1, DType::kI64}).ok());
    EXPECT_EQ(3, sum);
  });
}

TEST(LocalChannel, FactoryRejectsBadRendezvousData) {
  ChannelOptions options;
  options.connect_timeout = milliseconds(300);
  {
    MemoryRendezvous rv;
    ASSERT_TRUE(rv.Put("distri/channel/local_gang", "not a gang id").ok());
    auto ch = MakeChannel(Backend::kLocal, 1, 2, rv, options);
    EXPECT_EQ(StatusCode::kParseError, ch.status().code()) << ch.status().ToString();
  }
  {
    MemoryRendezvous rv;
    const std::string other_pid = std::to_string(::getpid() + 1);
    ASSERT_TRUE(rv.Put("distri/channel/local_gang", other_pid + ":00ff").ok());
    auto ch = MakeChannel(Backend::kLocal, 1, 2, rv, options);
    EXPECT_EQ(StatusCode::kFailedPrecondition, ch.status().code()) << ch.status().ToString();
    EXPECT_NE(std::string::npos, ch.status().message().find("use the ucx backend")) << ch.status().message();
  }
  {
    MemoryRendezvous rv;
    ASSERT_TRUE(rv.Put("distri/channel/local_gang", std::to_string(::getpid()) + ":feed").ok());
    auto ch = MakeChannel(Backend::kLocal, 1, 2, rv, options);
    EXPECT_EQ(StatusCode::kNotFound, ch.status().code()) << ch.status().ToString();
  }
  {
    MemoryRendezvous rv;  // rank 0 waits for ranks that never come
    auto ch = MakeChannel(Backend::kLocal, 0, 3, rv, options);
    EXPECT_EQ(StatusCode::kDeadlineExceeded, ch.status().code()) << ch.status().ToString();
    EXPECT_NE(std::string::npos, ch.status().message().find("ranks 1, 2 of 3 did not join")) << ch.status().message();
  }
  {
    MemoryRendezvous rv;  // rank 1 waits for a rank 0 that never comes
    auto ch = MakeChannel(Backend::kLocal, 1, 2, rv, options);
    EXPECT_EQ(StatusCode::kDeadlineExceeded, ch.status().code()) << ch.status().ToString();
  }
}

TEST(ChannelFactory, RejectsBadArguments) {
  MemoryRendezvous rv;
  EXPECT_EQ(StatusCode::kInvalidArgument, MakeChannel(Backend::kLocal, 2, 2, rv).status().code());
  EXPECT_EQ(StatusCode::kInvalidArgument, MakeChannel(Backend::kLocal, 0, 0, rv).status().code());
  const auto built = AvailableBackends();
  if (std::find(built.begin(), built.end(), Backend::kNccl) == built.end()) {
    auto nccl = MakeChannel(Backend::kNccl, 0, 1, rv);
    EXPECT_EQ(StatusCode::kUnimplemented, nccl.status().code());
    EXPECT_NE(std::string::npos, nccl.status().message().find("built: local")) << nccl.status().message();
  }
  EXPECT_EQ(Backend::kUcx, ParseBackend("ucx").value());
  EXPECT_EQ(StatusCode::kInvalidArgument, ParseBackend("mpi").status().code());
}

}  // namespace
}  // namespace distri::channel
