// distri-cluster: the cluster YAML, keys, the state file, node command lines, and the binary's
// status / submit / batch against an in-process head with a fake actor.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/cli/cluster_config.h"
#include "runtime/cli/launcher.h"
#include "runtime/common/env_var.h"
#include "tests/runtime/head/test_cluster.h"

namespace distri::cli {
namespace {

using namespace distri::head::testing;

TEST(ClusterConfig, ExampleConfigsParse) {
  for (const char* name : {"local-cpu", "1gpu", "2gpu", "4gpu", "two-nodes"}) {
    const std::string path = std::string(DISTRI_SOURCE_DIR) + "/configs/" + name + ".yaml";
    Result<ClusterConfig> c = LoadClusterConfig(path);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_FALSE(c->nodes.empty());
  }
  ClusterConfig two = LoadClusterConfig(std::string(DISTRI_SOURCE_DIR) + "/configs/two-nodes.yaml").value();
  EXPECT_TRUE(two.nodes[0].IsLocal());
  EXPECT_FALSE(two.nodes[1].IsLocal());
  EXPECT_EQ(two.HeadAddress(), "tcp://10.0.0.1:7070");
}

TEST(ClusterConfig, ErrorsNameFileLineAndKey) {
  Result<ClusterConfig> c = ParseClusterConfig(
      "cluster_name: t\nmodel: /m\nnodes:\n  - name: a\n    gpus: four\n", "bad.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("bad.yaml:5"), std::string::npos) << c.status().ToString();
  EXPECT_NE(c.status().message().find("nodes[0].gpus"), std::string::npos) << c.status().ToString();
  c = ParseClusterConfig("cluster_name: t\nmodel: /m\nhead:\n  prot: 1\nnodes:\n  - cpu_actors: 1\n", "typo.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("prot"), std::string::npos) << c.status().ToString();
  c = ParseClusterConfig("cluster_name: t\nnodes:\n  - cpu_actors: 1\n", "nomodel.yaml");
  EXPECT_FALSE(c.ok());
  c = ParseClusterConfig("cluster_name: t\nmodel: /m\nnodes:\n  - gpus: [0, 1]\n    cpu_actors: 1\n", "ok.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->nodes[0].gpus, "0,1");
}

// `env` at the top level and per node: merged (the node's value wins), sorted, handed to
// distri-node as --env NAME=VALUE; bad names are errors naming file, line and key.
TEST(ClusterConfig, EnvReachesTheNodeCommand) {
  Result<ClusterConfig> c = ParseClusterConfig(
      "cluster_name: t\nmodel: /m\nenv:\n  NCCL_NVLS_ENABLE: 0\n  DISTRI_SDPA_BACKEND: cudnn\n"
      "nodes:\n  - name: a\n    cpu_actors: 1\n    env:\n      DISTRI_SDPA_BACKEND: flash\n"
      "      OMP_NUM_THREADS: \"4\"\n      EMPTY: \"\"\n  - name: b\n    cpu_actors: 1\n",
      "env.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  using Env = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(c->nodes[0].env, (Env{{"DISTRI_SDPA_BACKEND", "flash"}, {"EMPTY", ""}, {"NCCL_NVLS_ENABLE", "0"},
                                  {"OMP_NUM_THREADS", "4"}}));
  EXPECT_EQ(c->nodes[1].env, (Env{{"DISTRI_SDPA_BACKEND", "cudnn"}, {"NCCL_NVLS_ENABLE", "0"}}));
  std::vector<std::string> cmd = NodeCommand(*c, c->nodes[1], "/bin");
  std::vector<std::string> envs;
  for (size_t i = 0; i + 1 < cmd.size(); ++i) {
    if (cmd[i] == "--env") envs.push_back(cmd[i + 1]);
  }
  EXPECT_EQ(envs, (std::vector<std::string>{"DISTRI_SDPA_BACKEND=cudnn", "NCCL_NVLS_ENABLE=0"}));

  c = ParseClusterConfig("cluster_name: t\nmodel: /m\nnodes:\n  - cpu_actors: 1\n    env:\n      1BAD: x\n",
                         "badenv.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("badenv.yaml:6"), std::string::npos) << c.status().ToString();
  EXPECT_NE(c.status().message().find("nodes[0].env.1BAD"), std::string::npos) << c.status().ToString();
  c = ParseClusterConfig("cluster_name: t\nmodel: /m\nenv: [A, B]\nnodes:\n  - cpu_actors: 1\n", "seq.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("env"), std::string::npos) << c.status().ToString();
  c = ParseClusterConfig("cluster_name: t\nmodel: /m\nenv:\n  A:\n    nested: 1\nnodes:\n  - cpu_actors: 1\n",
                         "nested.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("env.A"), std::string::npos) << c.status().ToString();
}

TEST(EnvAssignment, ParsesAndRefuses) {
  auto kv = ParseEnvAssignment("A_1=x=y", "--env");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->first, "A_1");
  EXPECT_EQ(kv->second, "x=y");
  EXPECT_EQ(ParseEnvAssignment("EMPTY=", "--env")->second, "");
  EXPECT_FALSE(ParseEnvAssignment("NOEQUALS", "--env").ok());
  EXPECT_FALSE(ParseEnvAssignment("=x", "--env").ok());
  EXPECT_FALSE(ParseEnvAssignment("A-B=x", "--env").ok());
  auto bad = ParseEnvAssignment("9A=x", "--env");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--env: '9A'"), std::string::npos) << bad.status().ToString();
}

TEST(Launcher, KeysStateAndCommands) {
  TempDir dir;
  bool created = false;
  ASSERT_TRUE(EnsureClusterKeys(dir.path() + "/keys", &created).ok());
  EXPECT_TRUE(created);
  ASSERT_TRUE(EnsureClusterKeys(dir.path() + "/keys", &created).ok());
  EXPECT_FALSE(created);  // kept
  EXPECT_TRUE(wire::ReadKeyPairFile(dir.path() + "/keys/client.key").ok());
  EXPECT_EQ(wire::ReadAuthorizedKeysFile(dir.path() + "/keys/authorized_keys")->size(), 2u);

  const std::vector<ProcessEntry> entries = {{"head", "head", "local", 10}, {"node", "b", "gpu-b", 20}};
  ASSERT_TRUE(WriteState(dir.path() + "/state", entries).ok());
  std::vector<ProcessEntry> back = ReadState(dir.path() + "/state").value();
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].host, "gpu-b");
  EXPECT_EQ(back[1].pid, 20);

  ClusterConfig c = ParseClusterConfig("cluster_name: t\nmodel: /m\nstate_dir: " + dir.path() +
                                           "\nnodes:\n  - name: a\n    cpu_actors: 2\n", "t.yaml").value();
  std::vector<std::string> cmd = NodeCommand(c, c.nodes[0], "/bin");
  EXPECT_EQ(cmd[0], "/bin/distri-node");
  auto flag = [&](const std::string& f) {
    for (size_t i = 0; i + 1 < cmd.size(); ++i) if (cmd[i] == f) return cmd[i + 1];
    return std::string("<missing>");
  };
  EXPECT_EQ(flag("--head"), "tcp://127.0.0.1:7070");
  EXPECT_EQ(flag("--keys"), dir.path() + "/keys");
  EXPECT_EQ(flag("--model"), "/m");
  EXPECT_EQ(flag("--cpu-actors"), "2");
  EXPECT_EQ(flag("--gpus"), "none");
  EXPECT_EQ(HeadCommand(c, "/bin")[0], "/bin/distri-head");
}

// Runs distri-cluster with `args`; returns its exit status, stdout+stderr in *out.
int RunCli(const std::vector<std::string>& args, std::string* out) {
  std::string cmd = DISTRI_CLUSTER_BINARY;
  for (const std::string& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
  const int rc = pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// `distri-cluster VERB TARGET... REST...` (TARGET: the head's address and keys).
std::vector<std::string> Command(const std::string& verb, const std::vector<std::string>& target,
                                 const std::vector<std::string>& rest) {
  std::vector<std::string> args = {verb};
  args.insert(args.end(), target.begin(), target.end());
  args.insert(args.end(), rest.begin(), rest.end());
  return args;
}

TEST(DistriCluster, StatusSubmitBatchAgainstAHead) {
  TempDir dir;
  WriteKeys(dir.path());
  auto head = head::HeadServer::Start(TestHeadOptions(dir.path(), ":memory:")).value();
  FakeActorOptions o;
  o.keys_dir = dir.path();
  FakeActor actor(head->endpoint(), o);
  const std::vector<std::string> target = {"--address", head->endpoint(), "--keys", dir.path()};

  std::string out;
  std::vector<std::string> args = Command("submit", target,
                                          {"--prompt", "a fox", "--height", "64", "--width", "64", "--steps", "3",
                                           "--seed", "5", "--out", dir.path() + "/fox.png"});
  ASSERT_EQ(RunCli(args, &out), 0) << out;
  std::ifstream f(dir.path() + "/fox.png", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  wire::JobSpec spec = TinySpec();
  spec.prompt = "a fox";
  spec.seed = 5;
  EXPECT_EQ(bytes, FakeImage(spec));

  // --json: one machine-readable line on stdout (bench/run_cluster_bench.sh reads it).
  out.clear();
  args = Command("submit", target,
                 {"--prompt", "a fox", "--height", "64", "--width", "64", "--steps", "3", "--seed", "5", "-q", "--json",
                  "--out", dir.path() + "/fox2.png"});
  ASSERT_EQ(RunCli(args, &out), 0) << out;
  const size_t brace = out.find("\n{");
  ASSERT_NE(brace, std::string::npos) << out;
  const nlohmann::json line = nlohmann::json::parse(out.substr(brace + 1, out.find('\n', brace + 1) - brace - 1));
  EXPECT_EQ(line["state"], "SUCCEEDED") << line;
  EXPECT_EQ(line["seed"], 5) << line;
  EXPECT_EQ(line["width"], 64) << line;
  EXPECT_EQ(line["gang_size"], 1) << line;
  EXPECT_EQ(line["gang"].size(), 1u) << line;
  EXPECT_EQ(line["out"], dir.path() + "/fox2.png") << line;
  EXPECT_GE(line["client_ms"].get<double>(), line["run_ms"].get<double>()) << line;
  // Rank 0's own timings reach the client (the fake actor reports 10 ms a step, 7.5 ms decode).
  EXPECT_EQ(line["denoise_ms"].get<double>(), 30.0) << line;
  EXPECT_EQ(line["decode_ms"].get<double>(), 7.5) << line;
  EXPECT_EQ(line["job_id"].get<std::string>().size(), 32u) << line;
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/fox2.png"));

  // --preview-every / --preview: the newest latent preview lands in the file (via .tmp + rename).
  out.clear();
  args = Command("submit", target,
                 {"--prompt", "a fox", "--height", "64", "--width", "64", "--steps", "300", "--seed", "5", "-q",
                  "--preview-every", "2", "--preview", dir.path() + "/preview.png", "--out", dir.path() + "/fox3.png"});
  ASSERT_EQ(RunCli(args, &out), 0) << out;
  std::ifstream pf(dir.path() + "/preview.png", std::ios::binary);
  const std::string preview((std::istreambuf_iterator<char>(pf)), {});
  ASSERT_EQ(preview.rfind("fake-preview:", 0), 0u) << preview;
  const int preview_step = std::stoi(preview.substr(13));
  EXPECT_EQ(preview_step % 2, 0) << preview;
  EXPECT_LT(preview_step, 300) << preview;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/preview.png.tmp"));
  out.clear();
  args = Command("submit", target, {"--prompt", "x", "--preview", "/tmp/p.png"});
  EXPECT_EQ(RunCli(args, &out), 1);
  EXPECT_NE(out.find("--preview needs --preview-every"), std::string::npos) << out;

  std::ofstream(dir.path() + "/prompts.txt") << "# two prompts\nred\nblue\n";
  out.clear();
  args = Command("batch", target,
                 {"--prompts", dir.path() + "/prompts.txt", "--out-dir", dir.path() + "/batch", "--height", "64",
                  "--width", "64", "--steps", "2", "--guidance-rescale", "0.25"});
  ASSERT_EQ(RunCli(args, &out), 0) << out;
  std::ifstream manifest(dir.path() + "/batch/manifest.jsonl");
  int lines = 0;
  for (std::string line; std::getline(manifest, line);) {
    ++lines;
    EXPECT_NE(line.find("\"state\":\"SUCCEEDED\""), std::string::npos) << line;
  }
  EXPECT_EQ(lines, 2);
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/batch/1.png"));
  // The prompts go to the head as one batch (SubmitJobs): one job it cannot run refuses them
  // all, named by its index ("jobs[i] of N" is the head's batch answer).
  out.clear();
  args = Command("batch", target,
                 {"--prompts", dir.path() + "/prompts.txt", "--out-dir", dir.path() + "/refused", "--height", "65"});
  EXPECT_EQ(RunCli(args, &out), 1);
  EXPECT_NE(out.find("jobs[0] of 2: width and height must be multiples of 8"), std::string::npos) << out;
  EXPECT_NE(out.find("prompts.txt"), std::string::npos) << out;

  out.clear();
  args = Command("status", target, {});
  ASSERT_EQ(RunCli(args, &out), 0) << out;
  EXPECT_NE(out.find("5 succeeded"), std::string::npos) << out;
  EXPECT_NE(out.find(actor.id().Short()), std::string::npos) << out;
  EXPECT_NE(out.find("protocol 1." + std::to_string(wire::kProtocolVersionMinor)), std::string::npos) << out;

  // A bad job is refused with the head's reason.
  out.clear();
  args = Command("submit", target, {"--prompt", "x", "--height", "65"});
  EXPECT_EQ(RunCli(args, &out), 1);
  EXPECT_NE(out.find("multiples of 8"), std::string::npos) << out;

  // DistriFusion options and guidance_rescale reach the actor in AssignTask; a bad mode is
  // refused by the head, a bad guidance_rescale by the client's encoder.
  out.clear();
  args = Command("submit", target,
                 {"--prompt", "y", "--height", "64", "--width", "64", "--steps", "2", "--sync-mode", "full_sync",
                  "--warmup-steps", "1", "--guidance-rescale", "0.7", "-q", "--out", dir.path() + "/y.png"});
  ASSERT_EQ(RunCli(args, &out), 0) << out;
  const std::vector<wire::AssignTask> tasks = actor.received();
  ASSERT_FALSE(tasks.empty());
  EXPECT_EQ(tasks.back().job.sync_mode, "full_sync");
  EXPECT_EQ(tasks.back().job.warmup_steps, 1u);
  EXPECT_FALSE(tasks.front().job.warmup_steps.has_value());  // not given: absent
  EXPECT_EQ(tasks.back().job.guidance_rescale, 0.7);
  EXPECT_EQ(tasks.front().job.guidance_rescale, 0.0);  // not given: off
  size_t batch_tasks = 0;
  for (const wire::AssignTask& t : tasks) {
    if (t.job.prompt != "red" && t.job.prompt != "blue") continue;
    ++batch_tasks;
    EXPECT_EQ(t.job.guidance_rescale, 0.25) << t.job.prompt;
  }
  EXPECT_EQ(batch_tasks, 2u);
  out.clear();
  args = Command("submit", target, {"--prompt", "z", "--height", "64", "--width", "64", "--sync-mode", "fast"});
  EXPECT_EQ(RunCli(args, &out), 1);
  EXPECT_NE(out.find("sync_mode 'fast' is not one of"), std::string::npos) << out;
  out.clear();
  args = Command("submit", target, {"--prompt", "z", "--warmup-steps", "-3"});
  EXPECT_NE(RunCli(args, &out), 0);
  EXPECT_NE(out.find("--warmup-steps"), std::string::npos) << out;
  out.clear();
  args = Command("submit", target, {"--prompt", "z", "--height", "64", "--width", "64", "--guidance-rescale", "1.5"});
  EXPECT_EQ(RunCli(args, &out), 1);
  EXPECT_NE(out.find("SubmitJob.guidance_rescale: value 1.5 outside [0, 1]"), std::string::npos) << out;
}

}  // namespace
}  // namespace distri::cli
