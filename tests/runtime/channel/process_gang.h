// Runs the ranks of a gang as separate processes: copies of the current test binary started
// with a gtest filter and per-rank environment variables (posix_spawn, so it is safe while
// other threads run). For the multi-process channel tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace distri::channel::testing {

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

}  // namespace distri::channel::testing
