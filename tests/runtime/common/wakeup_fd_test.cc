// WakeupFd: readable (to poll) from a Notify until a Drain, from any thread.
#include "runtime/common/wakeup_fd.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <thread>

namespace distri {
namespace {

bool Readable(const WakeupFd& w, int timeout_ms) {
  pollfd p{w.fd(), POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

TEST(WakeupFd, NotifyMakesItReadableUntilDrained) {
  auto w = WakeupFd::Create().value();
  EXPECT_FALSE(Readable(*w, 0));
  EXPECT_FALSE(w->Drain());
  w->Notify();
  w->Notify();
  EXPECT_TRUE(Readable(*w, 0));
  EXPECT_TRUE(w->Drain());  // both notifications at once
  EXPECT_FALSE(Readable(*w, 0));
  EXPECT_FALSE(w->Drain());
}

TEST(WakeupFd, WakesAPollInAnotherThread) {
  auto w = WakeupFd::Create().value();
  std::thread notifier([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    w->Notify();
  });
  EXPECT_TRUE(Readable(*w, 60'000));  // returns at the Notify, not the timeout
  notifier.join();
  EXPECT_TRUE(w->Drain());
}

}  // namespace
}  // namespace distri
