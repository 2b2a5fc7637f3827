// Runs the ranks of a gang as separate processes: copies of the current test binary started
// with a gtest filter and per-rank environment variables (posix_spawn, so it is safe while
// other threads run). For the multi-process channel tests.
#pragma once

#include <chrono>
#include <functional>
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

}  // namespace distri::channel::testing
