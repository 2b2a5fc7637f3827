#include "tests/runtime/channel/process_gang.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

#include "runtime/common/logging.h"

extern char** environ;

namespace distri::channel::testing {
namespace {

constexpr const char* kModeVariable = "DISTRI_CHANNEL_CHILD";
constexpr std::string_view kDestructivePrefix = "destructive:";

}  // namespace

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
      std::string(kModeVariable) + "=" + mode,
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

std::unique_ptr<TcpRendezvousServer> StartRendezvousServer() {
  auto listening = TcpRendezvousServer::Listen("127.0.0.1", 0);
  EXPECT_TRUE(listening.ok()) << listening.status().ToString();
  if (!listening.ok()) return nullptr;
  std::unique_ptr<TcpRendezvousServer> server = std::move(listening).value();
  const Status started = server->Start();
  EXPECT_TRUE(started.ok()) << started.ToString();
  return started.ok() ? std::move(server) : nullptr;
}

std::string DestructiveMode(const std::string& name) { return std::string(kDestructivePrefix) + name; }

std::vector<DestructiveParam> DestructiveParams(const std::vector<int>& worlds) {
  std::vector<DestructiveParam> params;
  for (const std::string& name : DestructiveCaseNames()) {
    for (int world : worlds) params.emplace_back(name, world);
  }
  return params;
}

std::string DestructiveParamName(const ::testing::TestParamInfo<DestructiveParam>& info) {
  return std::get<0>(info.param) + "_world" + std::to_string(std::get<1>(info.param));
}

void ChildRankTest::SetUp() {
  const char* mode = std::getenv(kModeVariable);
  mode_ = mode == nullptr ? "" : mode;
  if (mode_.empty()) GTEST_SKIP() << "runs only as a rank started by the multi-process tests";
  auto env = ReadLaunchEnv();
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  env_ = *env;
  SetLogRank(env_.rank);
  trace_.emplace(__FILE__, __LINE__,
                 "rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) + ", mode " + mode_);
  if (mode_.rfind(kDestructivePrefix, 0) == 0) {
    destructive_ = FindDestructiveCase(mode_.substr(kDestructivePrefix.size()));
    ASSERT_NE(nullptr, destructive_) << mode_;
  }
}

void ChildRankTest::TearDown() { std::fflush(stdout); }

std::unique_ptr<Channel> ChildRankTest::MakeRankChannel(Backend backend, Rendezvous& rendezvous,
                                                        ChannelOptions options) const {
  if (destructive_ != nullptr) options.op_timeout = destructive_->op_timeout;
  auto made = MakeChannel(backend, env_.rank, env_.world_size, rendezvous, options);
  EXPECT_TRUE(made.ok()) << made.status().ToString();
  return made.ok() ? std::move(made).value() : nullptr;
}

}  // namespace distri::channel::testing
