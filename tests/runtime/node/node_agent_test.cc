// NodeAgent against a fake head: registration, actor processes (a shell script standing in
// for distri-worker), crash reports and restarts, re-registration after a head restart, and a
// clean stop that leaves no process behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <signal.h>
#include <sys/stat.h>

#include "runtime/common/png.h"
#include "runtime/node/node_agent.h"
#include "runtime/node/resources.h"
#include "tests/runtime/node/fake_head.h"

namespace distri::node {
namespace {

using distri::testing::FakeHead;
using distri::testing::MakeTempDir;
using distri::testing::WaitUntil;
using std::chrono::milliseconds;

// A stand-in for distri-worker: records its flags and environment, then sleeps.
std::string WriteFakeWorker(const std::string& dir) {
  const std::string path = dir + "/fake-worker";
  const std::string script =
      "#!/bin/sh\n"
      "while [ $# -gt 0 ]; do\n"
      "  case \"$1\" in --actor-id) id=$2;; esac\n"
      "  echo \"$1\" >> " + dir + "/args.$$; shift\n"
      "done\n"
      "mv " + dir + "/args.$$ " + dir + "/args.$id\n"
      "echo \"cuda=[$CUDA_VISIBLE_DEVICES] extra=[$DISTRI_TEST_EXTRA] omp=[$OMP_NUM_THREADS]\" > " + dir + "/env.$id\n"
      "echo \"fake worker $id started\"\n"
      "exec sleep 1000\n";
  EXPECT_TRUE(WriteFile(path, script).ok());
  chmod(path.c_str(), 0755);
  return path;
}

bool Alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

class NodeAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("distri_node_agent");
    head_ = std::make_unique<FakeHead>(dir_);
    options_.head = head_->endpoint();
    options_.keys_dir = dir_;
    options_.model_dir = "/models/tiny-sdxl/";
    options_.gpus = "none";
    options_.cpu_actors = 2;
    options_.log_dir = dir_ + "/logs";
    options_.worker_path = WriteFakeWorker(dir_);
    options_.worker_env = {{"DISTRI_TEST_EXTRA", "x"}};
    options_.register_retry = milliseconds(100);
    options_.restart.initial_backoff = milliseconds(20);
    options_.restart.poll_interval = milliseconds(5);
    options_.restart.stop_grace = milliseconds(2000);
  }

  void TearDown() override {
    head_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
  std::unique_ptr<FakeHead> head_;
  NodeAgentOptions options_;
};

TEST_F(NodeAgentTest, RegistersStartsActorsAndReportsCrashes) {
  auto agent = NodeAgent::Create(options_);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  ASSERT_TRUE((*agent)->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return !head_->All<wire::RegisterNode>().empty(); }));
  const wire::RegisterNode reg = head_->All<wire::RegisterNode>()[0];
  EXPECT_EQ(reg.node_id, (*agent)->node_id());
  EXPECT_EQ(reg.resources.cpu_actors, 2u);
  EXPECT_TRUE(reg.resources.gpus.empty());
  EXPECT_EQ(reg.resources.models, std::vector<std::string>{"tiny-sdxl"});
  EXPECT_EQ(reg.resources.hostname, LocalHostname());

  // Both actors start with their flags, no GPU, and the extra environment.
  const auto ids = (*agent)->actor_ids();
  ASSERT_EQ(ids.size(), 2u);
  for (const auto& id : ids) {
    ASSERT_TRUE(WaitUntil([&] { return ReadFile(dir_ + "/env." + id.Hex()).ok(); })) << id.Hex();
    const std::string args = ReadFile(dir_ + "/args." + id.Hex()).value();
    EXPECT_EQ(args, "--head\n" + head_->endpoint() + "\n--keys\n" + dir_ + "\n--node-id\n" +
                        (*agent)->node_id().Hex() + "\n--actor-id\n" + id.Hex() +
                        "\n--gpu-index\n-1\n--model\n/models/tiny-sdxl/\n");
    // OMP_NUM_THREADS: inherited where set, else the cores shared by the two actors.
    const char* omp = std::getenv("OMP_NUM_THREADS");
    const std::string threads = omp != nullptr ? omp : std::to_string(std::max(1, UsableCores() / 2));
    EXPECT_EQ(ReadFile(dir_ + "/env." + id.Hex()).value(), "cuda=[] extra=[x] omp=[" + threads + "]\n");
  }
  // Heartbeats flow.
  ASSERT_TRUE(WaitUntil([&] { return head_->All<wire::Heartbeat>().size() >= 3; }));

  // Kill actor 1: the head hears of it, the agent restarts it with the same actor id.
  ASSERT_TRUE(WaitUntil([&] { return (*agent)->actors()[1].pid > 0; }));
  const pid_t victim = (*agent)->actors()[1].pid;
  kill(victim, SIGKILL);
  ASSERT_TRUE(WaitUntil([&] { return !head_->All<wire::ActorExited>().empty(); }));
  const wire::ActorExited exited = head_->All<wire::ActorExited>()[0];
  EXPECT_EQ(exited.actor_id, ids[1]);
  EXPECT_EQ(exited.signal, SIGKILL);
  EXPECT_EQ(exited.exit_code, -1);
  EXPECT_TRUE(exited.restarting);
  ASSERT_TRUE(WaitUntil([&] {
    auto a = (*agent)->actors()[1];
    return a.pid > 0 && a.pid != victim;
  }));
  EXPECT_EQ((*agent)->actors()[1].restarts, 1);
  // Its log has both runs.
  ASSERT_TRUE(WaitUntil([&] {
    const std::string log = ReadFile(options_.log_dir + "/actor-1.log").value_or("");
    return log.find("started") != log.rfind("started");
  }));

  // Stop: every actor is gone, and reported.
  std::vector<pid_t> pids;
  for (const auto& a : (*agent)->actors()) pids.push_back(a.pid);
  (*agent)->Stop();
  for (pid_t p : pids) EXPECT_FALSE(Alive(p)) << p;
  const auto exits = head_->All<wire::ActorExited>();
  ASSERT_EQ(exits.size(), 3u);
  EXPECT_FALSE(exits[1].restarting);
  EXPECT_FALSE(exits[2].restarting);
}

TEST_F(NodeAgentTest, RegistersAgainWhenTheHeadRestarts) {
  auto agent = NodeAgent::Create(options_);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  ASSERT_TRUE((*agent)->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return (*agent)->registrations() == 1; }));
  ASSERT_TRUE(WaitUntil([&] { return (*agent)->actors()[0].pid > 0; }));
  const pid_t actor = (*agent)->actors()[0].pid;
  head_->Restart();
  ASSERT_TRUE(WaitUntil([&] { return (*agent)->registrations() == 2; }))
      << "errors sent by the new head: " << head_->errors_sent();
  EXPECT_EQ(head_->All<wire::RegisterNode>().size(), 2u);
  // Actors keep running through a head restart.
  EXPECT_EQ((*agent)->actors()[0].pid, actor);
  EXPECT_TRUE(Alive(actor));
  ASSERT_TRUE(WaitUntil([&] { return head_->All<wire::Heartbeat>().size() >= 2; }));
}

TEST_F(NodeAgentTest, WaitsForTheHeadBeforeStartingActors) {
  head_.reset();  // no head yet
  options_.cpu_actors = 1;
  auto agent = NodeAgent::Create(options_);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  ASSERT_TRUE((*agent)->Start().ok());
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ((*agent)->actors()[0].pid, -1);
  (*agent)->Stop();
}

TEST_F(NodeAgentTest, BadOptionsNameTheFlag) {
  auto o = options_;
  o.cpu_actors = 0;
  auto a = NodeAgent::Create(o);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("--cpu-actors is 0"), std::string::npos) << a.status().ToString();

  o = options_;
  o.keys_dir = dir_ + "/missing";
  a = NodeAgent::Create(o);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("node.key"), std::string::npos) << a.status().ToString();

  o = options_;
  o.worker_path = dir_ + "/no-such-worker";
  a = NodeAgent::Create(o);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kNotFound);

  o = options_;
  o.gpus = "x,0";
  a = NodeAgent::Create(o);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("'x'"), std::string::npos) << a.status().ToString();
}

TEST(NodeAgentThreadsTest, ActorsShareTheCores) {
  EXPECT_EQ(ActorThreads(64, 4), 16);
  EXPECT_EQ(ActorThreads(16, 3), 5);
  EXPECT_EQ(ActorThreads(2, 4), 1);  // never zero
  EXPECT_EQ(ActorThreads(8, 0), 8);
  EXPECT_GE(UsableCores(), 1);
}

TEST_F(NodeAgentTest, WorkerEnvChoosesTheActorThreads) {
  options_.worker_env.emplace_back("OMP_NUM_THREADS", "3");
  auto agent = NodeAgent::Create(options_);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  ASSERT_TRUE((*agent)->Start().ok());
  for (const auto& id : (*agent)->actor_ids()) {
    ASSERT_TRUE(WaitUntil([&] { return ReadFile(dir_ + "/env." + id.Hex()).ok(); })) << id.Hex();
    EXPECT_EQ(ReadFile(dir_ + "/env." + id.Hex()).value(), "cuda=[] extra=[x] omp=[3]\n");
  }
  (*agent)->Stop();
}

TEST(NodeResourcesTest, SelectGpusAndModelName) {
  EXPECT_TRUE(SelectGpus("none").value().empty());
  EXPECT_FALSE(SelectGpus("1,1").ok());
  EXPECT_FALSE(SelectGpus("-1").ok());
  EXPECT_FALSE(SelectGpus("0,").ok());
  EXPECT_EQ(ModelName("/a/b/sdxl-base/"), "sdxl-base");
  EXPECT_EQ(ModelName("tiny"), "tiny");
}

}  // namespace
}  // namespace distri::node
