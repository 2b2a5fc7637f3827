// PeerExchange's checks that need no GPU: bad arguments are named before anything is
// allocated, and on a machine without a usable CUDA driver Create fails with a status (never a
// crash). Its protocol runs on GPUs: displaced_runner_gpu_test's PeerExchangeGivesTheSameBits.
#include "actors/parallel/peer_exchange.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace distri::parallel {
namespace {

PeerExchange::Layout TwoRankLayout() {
  PeerExchange::Layout l;
  l.chunk_base = {0, 256};
  l.slot_offset = {{0, 128}, {0, 64}};
  l.slot_bytes = {{128, 128}, {64, 64}};
  return l;
}

// CUDA_MODULE_LOADING as it was, again when a test that changes it ends (also after a skip).
struct RestoreLoading {
  bool had = std::getenv("CUDA_MODULE_LOADING") != nullptr;
  std::string value = had ? std::getenv("CUDA_MODULE_LOADING") : "";
  ~RestoreLoading() {
    if (had) {
      setenv("CUDA_MODULE_LOADING", value.c_str(), 1);
    } else {
      unsetenv("CUDA_MODULE_LOADING");
    }
  }
};

TEST(PeerExchange, BadArgumentsAreNamed) {
  int gathers = 0;
  const PeerExchange::AllGatherInts never = [&](const std::vector<int64_t>&) {
    ++gathers;
    return Result<std::vector<std::vector<int64_t>>>(Status::Internal("not reached"));
  };
  struct Case { int rank, world; int64_t bytes; PeerExchange::Layout layout; const char* why; };
  PeerExchange::Layout missing_slot = TwoRankLayout();
  missing_slot.slot_bytes[1].pop_back();
  PeerExchange::Layout no_chunks;
  const Case cases[] = {{0, 1, 512, TwoRankLayout(), "one rank"},
                        {2, 2, 512, TwoRankLayout(), "rank out of range"},
                        {0, 2, 0, TwoRankLayout(), "an empty block"},
                        {0, 2, 512, no_chunks, "no chunks"},
                        {1, 2, 512, missing_slot, "a chunk without a slot for every rank"},
                        {0, 2, 300, TwoRankLayout(), "a slot beyond the block's end (chunk 1 ends at 384)"}};
  for (const Case& c : cases) {
    auto made = PeerExchange::Create(c.rank, c.world, 0, c.bytes, c.layout, never);
    ASSERT_FALSE(made.ok()) << c.why;
    EXPECT_EQ(StatusCode::kInvalidArgument, made.status().code()) << c.why << ": " << made.status().ToString();
    EXPECT_NE(std::string::npos, made.status().message().find("peer exchange")) << made.status().message();
  }
  EXPECT_EQ(0, gathers) << "no exchange starts with bad arguments";
}

// Lazy kernel loading (CUDA's default) can deadlock a gang whose GPU waits spin: refused by
// name before anything is allocated or exchanged.
TEST(PeerExchange, LazyKernelLoadingIsRefused) {
  const RestoreLoading restore;
  int gathers = 0;
  const PeerExchange::AllGatherInts count = [&](const std::vector<int64_t>&) {
    ++gathers;
    return Result<std::vector<std::vector<int64_t>>>(Status::Internal("not reached"));
  };
  for (const char* value : {static_cast<const char*>(nullptr), "LAZY"}) {
    if (value == nullptr) {
      unsetenv("CUDA_MODULE_LOADING");
    } else {
      setenv("CUDA_MODULE_LOADING", value, 1);
    }
    auto made = PeerExchange::Create(0, 2, 0, 512, TwoRankLayout(), count);
    ASSERT_FALSE(made.ok());
    if (made.status().code() == StatusCode::kUnimplemented) GTEST_SKIP() << "a build without CUDA";
    EXPECT_EQ(StatusCode::kFailedPrecondition, made.status().code()) << made.status().ToString();
    EXPECT_NE(std::string::npos, made.status().message().find("CUDA_MODULE_LOADING=EAGER")) << made.status().message();
  }
  EXPECT_EQ(0, gathers);
}

TEST(PeerExchange, RanksOfAnotherProcessAreRefused) {
  // Every rank's values as the channel would return them, rank 1 claiming another process.
  // Without a CUDA driver (CI) Create stops earlier with its own status; never a crash.
  const RestoreLoading restore;
  setenv("CUDA_MODULE_LOADING", "EAGER", 1);  // past the loading check (no effect on a started CUDA)
  const PeerExchange::AllGatherInts gather = [](const std::vector<int64_t>& mine) {
    std::vector<int64_t> other = mine;
    other[0] += 1;  // another process id
    return Result<std::vector<std::vector<int64_t>>>(std::vector<std::vector<int64_t>>{mine, other});
  };
  auto made = PeerExchange::Create(0, 2, 0, 512, TwoRankLayout(), gather);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(std::string::npos, made.status().message().find("peer exchange")) << made.status().ToString();
  if (made.status().code() == StatusCode::kFailedPrecondition) {
    EXPECT_NE(std::string::npos, made.status().message().find("another process")) << made.status().message();
  }
}

}  // namespace
}  // namespace distri::parallel
