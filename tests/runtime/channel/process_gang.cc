#include "tests/runtime/channel/process_gang.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

extern char** environ;

namespace distri::channel::testing {

std::string RankExit::Describe() const {
  std::string out = "rank " + std::to_string(rank) + ": ";
  if (timed_out) return out + "did not finish in time (killed)";
  if (exited) return out + "exit code " + std::to_string(exit_code);
  if (signal != 0) return out + "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return out + "not started";
}

std::vector<RankExit> RunRanks(int world_size, const std::string& gtest_filter,
                               const std::function<std::vector<std::string>(int rank)>& env,
                               std::chrono::milliseconds timeout) {
  std::vector<RankExit> exits(static_cast<size_t>(world_size));
  std::vector<pid_t> pids(static_cast<size_t>(world_size), -1);
  const std::string filter = "--gtest_filter=" + gtest_filter;
  for (int r = 0; r < world_size; ++r) {
    exits[static_cast<size_t>(r)].rank = r;
    std::vector<std::string> vars;
    for (char** e = environ; *e != nullptr; ++e) vars.emplace_back(*e);
    for (std::string& v : env(r)) vars.push_back(std::move(v));
    std::vector<char*> envp;
    for (std::string& v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);
    std::string exe = "/proc/self/exe";
    std::string brief = "--gtest_brief=1";
    char* argv[] = {exe.data(), const_cast<char*>(filter.c_str()), brief.data(), nullptr};
    pid_t pid;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, envp.data()) == 0) {
      pids[static_cast<size_t>(r)] = pid;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int running = 0;
  for (pid_t p : pids) running += p > 0 ? 1 : 0;
  while (running > 0) {
    for (int r = 0; r < world_size; ++r) {
      pid_t& pid = pids[static_cast<size_t>(r)];
      if (pid <= 0) continue;
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        RankExit& e = exits[static_cast<size_t>(r)];
        e.exited = WIFEXITED(status);
        e.exit_code = e.exited ? WEXITSTATUS(status) : -1;
        e.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        pid = -1;
        --running;
      }
    }
    if (running == 0) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (int r = 0; r < world_size; ++r) {
        pid_t& pid = pids[static_cast<size_t>(r)];
        if (pid <= 0) continue;
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        exits[static_cast<size_t>(r)].timed_out = true;
        pid = -1;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return exits;
}

std::vector<std::string> ChildLaunchEnv(const std::string& mode, int rank, int world_size, uint16_t port) {
  return {
      "DISTRI_CHANNEL_CHILD=" + mode,
      "DISTRI_RANK=" + std::to_string(rank),
      "DISTRI_WORLD_SIZE=" + std::to_string(world_size),
      "DISTRI_MASTER_ADDR=127.0.0.1",
      "DISTRI_MASTER_PORT=" + std::to_string(port),
  };
}

void ExpectExits(const std::vector<RankExit>& exits, const std::map<int, int>& expected_exit) {
  for (const RankExit& e : exits) {
    const auto it = expected_exit.find(e.rank);
    const int expected = it == expected_exit.end() ? 0 : it->second;
    EXPECT_TRUE(e.exited && e.exit_code == expected)
        << e.Describe() << " (expected exit code " << expected << "); its output is above";
  }
}

}  // namespace distri::channel::testing
