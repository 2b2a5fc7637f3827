// The destructive half of the conformance suite: cases that break their gang on purpose
// (abort, timeouts, destruction with operations pending). See conformance.h.
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include "tests/runtime/channel/conformance.h"

namespace distri::channel::testing {
namespace {

using std::chrono::milliseconds;

// Every rank has finished connecting (MakeChannel returned everywhere) before rank 0 breaks
// the gang: otherwise a rank still in its wire-up could fail there instead of in the case.
void SyncUp(Channel& ch) {
  int32_t token = ch.rank();
  if (ch.rank() == 0) {
    for (int r = 1; r < ch.world_size(); ++r) {
      ASSERT_TRUE(ch.Recv(Buffer{&token, 1, DType::kI32}, r, 424242).ok());
    }
  } else {
    // Rank 0 may break the gang as soon as it has this message, possibly before the send
    // completes here: only a hang would be wrong.
    const Status s = ch.SendAsync(ConstBuffer(&token, 1, DType::kI32), 0, 424242).Wait(std::chrono::seconds(20));
    EXPECT_NE(StatusCode::kDeadlineExceeded, s.code()) << s.ToString();
    if (!s.ok()) std::printf("rank %d: sync-up send: %s\n", ch.rank(), s.ToString().c_str());
  }
}

// Fails unless `s` is a failure (not a hang) within the wait.
void ExpectFailedNotHung(const Status& s) {
  EXPECT_FALSE(s.ok());
  EXPECT_NE(StatusCode::kDeadlineExceeded, s.code()) << "the peer's failure was not noticed: " << s.ToString();
}

// The watchdog's path: rank 0 is stuck in a collective its peers never join; Abort from
// another thread unblocks it with the reason, and everything after fails fast.
void AbortUnblocksStuckCollective(std::unique_ptr<Channel>& ch) {
  SyncUp(*ch);
  if (ch->rank() == 0) {
    std::thread watchdog([&] {
      std::this_thread::sleep_for(milliseconds(200));
      ch->Abort("watchdog: step 12 stalled");
    });
    std::vector<float> v(1000, 1.0f);
    const auto start = std::chrono::steady_clock::now();
    const Status s = ch->AllReduce(CpuBuffer<float>(v.data(), v.size()), CpuBuffer(v.data(), v.size()));
    const auto took = std::chrono::steady_clock::now() - start;
    watchdog.join();
    EXPECT_EQ(StatusCode::kAborted, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("watchdog: step 12 stalled")) << s.message();
    EXPECT_LT(took, std::chrono::seconds(5));
    // Fail fast afterwards, with the same reason.
    const auto t0 = std::chrono::steady_clock::now();
    const Status after = ch->AllGather(CpuBuffer<float>(v.data(), 1), CpuBuffer(v.data() + 1, static_cast<size_t>(ch->world_size())));
    EXPECT_EQ(StatusCode::kAborted, after.code()) << after.ToString();
    EXPECT_NE(std::string::npos, after.message().find("watchdog")) << after.message();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(500));
    EXPECT_EQ(StatusCode::kAborted, ch->status().code());
    ch->Abort("second abort is harmless");
    EXPECT_NE(std::string::npos, ch->status().message().find("watchdog")) << "first reason kept";
  } else {
    // A peer waiting on rank 0 learns that the gang is broken instead of hanging.
    std::vector<float> v(4);
    ExpectFailedNotHung(ch->RecvAsync(CpuBuffer(v.data(), 4), 0, 1).Wait(milliseconds(20000)));
  }
}

// A synchronous operation that outlives op_timeout aborts the channel and says so.
void SyncTimeoutAborts(std::unique_ptr<Channel>& ch) {
  SyncUp(*ch);
  if (ch->rank() == 0) {
    std::vector<int32_t> v(16, 1), out(16 * static_cast<size_t>(ch->world_size()));
    const auto start = std::chrono::steady_clock::now();
    const Status s = ch->AllGather(CpuBuffer<int32_t>(v.data(), 16), CpuBuffer(out.data(), out.size()));
    EXPECT_EQ(StatusCode::kDeadlineExceeded, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("aborted")) << s.message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_EQ(StatusCode::kAborted, ch->status().code());
    EXPECT_EQ(StatusCode::kAborted, ch->Barrier().code());
  } else {
    std::vector<float> v(4);
    ExpectFailedNotHung(ch->RecvAsync(CpuBuffer(v.data(), 4), 0, 1).Wait(milliseconds(20000)));
  }
}

// Destroying a channel with operations pending completes them (Aborted) and never touches
// their buffers afterwards.
void DestroyWithPendingOperations(std::unique_ptr<Channel>& ch) {
  SyncUp(*ch);
  if (ch->rank() == 0) {
    std::vector<float> v(4);
    Handle h = ch->RecvAsync(CpuBuffer(v.data(), 4), ch->world_size() - 1, 77);
    std::vector<float> g(4 * static_cast<size_t>(ch->world_size()));
    Handle c = ch->AllGatherAsync(CpuBuffer<float>(v.data(), 4), CpuBuffer(g.data(), g.size()));
    ch.reset();
    const Status s = h.Wait(milliseconds(5000));
    EXPECT_EQ(StatusCode::kAborted, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("destroyed")) << s.message();
    EXPECT_FALSE(c.Wait(milliseconds(5000)).ok());
  } else {
    std::vector<float> v(4);
    ExpectFailedNotHung(ch->RecvAsync(CpuBuffer(v.data(), 4), 0, 1).Wait(milliseconds(20000)));
  }
}

const std::vector<DestructiveCase> kDestructive = {
    {"AbortUnblocksStuckCollective", 2, std::chrono::seconds(30), AbortUnblocksStuckCollective},
    {"SyncTimeoutAborts", 2, milliseconds(300), SyncTimeoutAborts},
    {"DestroyWithPendingOperations", 2, std::chrono::seconds(30), DestroyWithPendingOperations},
};

}  // namespace

const std::vector<DestructiveCase>& DestructiveCases() { return kDestructive; }

std::vector<std::string> DestructiveCaseNames() {
  std::vector<std::string> out;
  for (const auto& c : DestructiveCases()) out.push_back(c.name);
  return out;
}

const DestructiveCase* FindDestructiveCase(const std::string& name) {
  for (const DestructiveCase& c : kDestructive) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

}  // namespace distri::channel::testing
