// Runs the ranks of a gang as separate processes: copies of the current test binary started
// with a gtest filter and per-rank environment variables (posix_spawn, so it is safe while
// other threads run). For the multi-process channel tests: the parent side (RunRanks and what
// goes with it) and the child side (ChildRankTest, the fixture of the test each rank runs).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/channel/factory.h"
#include "runtime/channel/launch_env.h"
#include "runtime/channel/tcp_rendezvous.h"
#include "tests/runtime/channel/conformance.h"

namespace distri::channel::testing {

// ------------------------------------------------------------------------ the parent side

struct RankExit {
  int rank = 0;
  bool exited = false;    // exited normally (exit_code valid)
  int exit_code = -1;
  int signal = 0;         // killed by this signal
  bool timed_out = false;  // still running at the deadline: killed with SIGKILL
  std::string Describe() const;
};

// Starts world_size processes of /proc/self/exe with `--gtest_filter=<filter>`, rank r with
// the current environment plus env(r) ("NAME=value" entries), and waits for all of them.
// Processes still running after `timeout` are killed.
std::vector<RankExit> RunRanks(int world_size, const std::string& gtest_filter,
                               const std::function<std::vector<std::string>(int rank)>& env,
                               std::chrono::milliseconds timeout);

// The environment of rank `rank` of a child gang in `mode` (DISTRI_CHANNEL_CHILD), with the
// launch variables of runtime/channel/launch_env.h pointing at 127.0.0.1:`port`.
std::vector<std::string> ChildLaunchEnv(const std::string& mode, int rank, int world_size, uint16_t port);

// Expects every rank to have exited normally with expected_exit[rank] (default 0).
void ExpectExits(const std::vector<RankExit>& exits, const std::map<int, int>& expected_exit);

// A TCP rendezvous server on 127.0.0.1 (a free port, see its port()), serving, for the ranks of
// a child gang; null after a gtest failure.
std::unique_ptr<TcpRendezvousServer> StartRendezvousServer();

// The child mode that runs the destructive conformance case `name` (conformance.h).
std::string DestructiveMode(const std::string& name);

// (destructive case name, world size): every destructive case with each of `worlds`, the
// parameters of a suite that runs each case as a child gang; and a test's name,
// "<case>_world<n>".
using DestructiveParam = std::tuple<std::string, int>;
std::vector<DestructiveParam> DestructiveParams(const std::vector<int>& worlds);
std::string DestructiveParamName(const ::testing::TestParamInfo<DestructiveParam>& info);

// ------------------------------------------------------------------------- the child side

// The fixture of the test that each rank of a child gang runs (the filter given to RunRanks):
// skipped unless this process was started with ChildLaunchEnv. SetUp reads the mode and the
// launch variables, names the rank in the log and in every failure of the test, and finds the
// case of a DestructiveMode; TearDown flushes what the rank printed.
class ChildRankTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // This rank's channel: `backend` over `rendezvous` with `options`, whose op_timeout the
  // destructive case (if any) replaces with its own. Null after a gtest failure.
  std::unique_ptr<Channel> MakeRankChannel(Backend backend, Rendezvous& rendezvous, ChannelOptions options) const;

  std::string mode_;                              // DISTRI_CHANNEL_CHILD
  LaunchEnv env_;                                 // this rank, the gang, the rendezvous address
  const DestructiveCase* destructive_ = nullptr;  // the case of a DestructiveMode, else null

 private:
  std::optional<::testing::ScopedTrace> trace_;
};

}  // namespace distri::channel::testing
