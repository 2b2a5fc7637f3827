// `distri-cluster` end to end on CPU (label `integration`): the test writes a cluster YAML like
// configs/local-cpu.yaml (one local node, one CPU actor, the sdxl-tiny model, the build's
// binaries, a free port, everything under a temporary folder), then runs the real command:
// up, status, submit (twice, same size: the second job runs on the actor's warm generator; then
// with --guidance-rescale, and with DistriFusion options), logs and down. Each image must equal single-process `distri generate`'s with the same flags,
// and after `down` no process of the cluster may be left.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/common/png.h"
#include "tests/integration/test_cluster.h"
#include "tests/runtime/node/fake_head.h"

namespace distri::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs distri-cluster with `args` (one thread per actor: the machine is small, and the
// reference is rendered the same way); returns its exit status, stdout+stderr in *out.
int Cluster(const std::vector<std::string>& args, std::string* out) {
  std::string cmd = "OMP_NUM_THREADS=1 ";
  cmd += Quote(DISTRI_TEST_CLUSTER);
  for (const std::string& a : args) {
    cmd += ' ';
    cmd += Quote(a);
  }
  cmd += " 2>&1";
  out->clear();
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
  const int rc = pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Alive and not a zombie (a container's pid 1 may not reap the cluster's orphans).
bool Running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return false;
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// Running processes whose command line mentions `text` (the cluster's folder: every process
// of the cluster gets its keys or log folder from there).
std::vector<pid_t> ProcessesMentioning(const std::string& text) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), {});
    const pid_t pid = std::stoi(name);
    if (pid != getpid() && cmdline.find(text) != std::string::npos && Running(pid)) out.push_back(pid);
  }
  return out;
}

TEST(DistriClusterCommand, UpStatusSubmitLogsDownOnCpu) {
  const std::string dir = MakeTempDir("distri_cluster_cli");
  const Binaries bin = BuiltBinaries();
  const std::string bin_dir = fs::path(bin.head).parent_path().string();
  ASSERT_EQ(fs::path(bin.node).parent_path().string(), bin_dir) << "distri-head and distri-node must share a folder";
  const std::string model = dir + "/sdxl-tiny";
  ASSERT_EQ(RunToCompletion(bin.distri, {"model", "init", "--arch", "sdxl-tiny", model}, dir + "/model-init.log"), 0)
      << ReadFile(dir + "/model-init.log").value_or("");

  const std::string config = dir + "/cluster.yaml";
  std::ofstream(config) << "# written by cluster_cli_test (like configs/local-cpu.yaml)\n"
                        << "cluster_name: cli-test\n"
                        << "state_dir: " << dir << "/state\n"
                        << "bin_dir: " << bin_dir << "\n"
                        << "model: " << model << "\n"
                        << "log_level: info\n"
                        << "head:\n"
                        << "  host: 127.0.0.1\n"
                        << "  port: " << FreePort() << "\n"
                        << "  metrics_port: -1\n"
                        // The default interval: this test kills nothing, and a short one made a
                        // loaded CI machine's stall of 0.6 s declare the busy actor dead (its job
                        // then ran twice and the generator count below was off by one).
                        << "  heartbeat_ms: 1000\n"
                        << "nodes:\n"
                        << "  - name: local\n"
                        << "    host: localhost\n"
                        << "    gpus: none\n"
                        << "    cpu_actors: 1\n"
                        << "    max_restarts: 1\n";
  std::string out;
  bool up = false;
  struct Downer {  // a failing test still stops the cluster
    const std::string& config;
    bool& up;
    ~Downer() {
      std::string ignored;
      if (up) Cluster({"down", config}, &ignored);
    }
  } downer{config, up};

  ASSERT_EQ(Cluster({"up", config}, &out), 0) << out;
  up = true;
  EXPECT_NE(out.find("created cluster keys"), std::string::npos) << out;
  EXPECT_NE(out.find("node local up"), std::string::npos) << out;
  // A second `up` of a running cluster is refused.
  EXPECT_EQ(Cluster({"up", config}, &out), 1);
  EXPECT_NE(out.find("already up"), std::string::npos) << out;

  // status: the node and, once its model is loaded, its idle CPU actor.
  const auto deadline = std::chrono::steady_clock::now() + seconds(120);
  bool idle = false;
  while (!idle && std::chrono::steady_clock::now() < deadline) {
    idle = Cluster({"status", "--config", config}, &out) == 0 && out.find(" idle ") != std::string::npos;
    if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  ASSERT_TRUE(idle) << out;
  EXPECT_NE(out.find("alive"), std::string::npos) << out;
  EXPECT_NE(out.find("1 CPU actor(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("model sdxl-tiny"), std::string::npos) << out;

  // submit, twice with the same size (the second job reuses the actor's warm generator), a
  // third time with guidance_rescale (same generator: it is a per-job argument), then with
  // DistriFusion options (a new generator for them).
  struct Case {
    const char* name;
    const char* seed;
    std::vector<std::string> extra;
  };
  const std::vector<Case> cases = {{"7", "7", {}},
                                   {"8", "8", {}},
                                   {"7-rescale", "7", {"--guidance-rescale", "0.7"}},
                                   {"9", "9", {"--sync-mode", "full_sync", "--warmup-steps", "1"}}};
  for (const Case& c : cases) {
    std::vector<std::string> flags = {"--prompt", "a red lighthouse at dawn", "--height", "64", "--width", "64",
                                      "--steps", "4", "--seed", c.seed, "--guidance", "5", "--sampler", "euler"};
    flags.insert(flags.end(), c.extra.begin(), c.extra.end());
    const std::string png = dir + "/cluster-" + c.name + ".png", ref = dir + "/generate-" + c.name + ".png";
    std::vector<std::string> submit = {"submit", "--config", config, "--gpus", "1", "-q", "--out", png};
    submit.insert(submit.end(), flags.begin(), flags.end());
    ASSERT_EQ(Cluster(submit, &out), 0) << out;
    EXPECT_NE(out.find("seed " + std::string(c.seed)), std::string::npos) << out;
    std::vector<std::string> generate = {"generate", "--model", model, "--device", "cpu", "--quiet", "--out", ref};
    generate.insert(generate.end(), flags.begin(), flags.end());
    ASSERT_EQ(RunToCompletion(bin.distri, generate, ref + ".log", {{"OMP_NUM_THREADS", "1"}}), 0)
        << ReadFile(ref + ".log").value_or("");
    const std::string a = ReadFile(png).value_or(""), b = ReadFile(ref).value_or("");
    ASSERT_FALSE(b.empty());
    EXPECT_TRUE(a == b) << c.name << ": distri-cluster submit's PNG (" << a.size()
                        << " bytes) differs from distri generate's (" << b.size() << " bytes)";
  }
  // guidance_rescale reached the actor: the image differs from the same job without it.
  EXPECT_NE(ReadFile(dir + "/cluster-7-rescale.png").value_or(""), ReadFile(dir + "/cluster-7.png").value_or(""))
      << "--guidance-rescale 0.7 changed nothing";
  ASSERT_EQ(Cluster({"status", "--config", config}, &out), 0) << out;
  EXPECT_NE(out.find("4 succeeded"), std::string::npos) << out;
  // One generator for the first three jobs, one more for the fourth's options.
  const std::string actor_log = ReadFile(dir + "/state/logs/actors-local/actor-0.log").value_or("");
  size_t generators = 0;
  for (size_t at = actor_log.find("new generator for gangs of one"); at != std::string::npos;
       at = actor_log.find("new generator for gangs of one", at + 1)) {
    ++generators;
  }
  EXPECT_EQ(generators, 2u) << actor_log;
  EXPECT_NE(actor_log.find("sync mode full_sync, 1 warm-up steps"), std::string::npos) << actor_log;

  // logs: the head's and the node's.
  ASSERT_EQ(Cluster({"logs", config, "-n", "500"}, &out), 0) << out;
  EXPECT_NE(out.find("head.log"), std::string::npos) << out;
  EXPECT_NE(out.find("head serving on"), std::string::npos) << out;
  EXPECT_NE(out.find("SUCCEEDED"), std::string::npos) << out;
  EXPECT_NE(out.find("node-local.log"), std::string::npos) << out;
  ASSERT_EQ(Cluster({"logs", config, "local", "-n", "5"}, &out), 0) << out;
  EXPECT_EQ(out.find("head serving on"), std::string::npos) << out;
  EXPECT_NE(Cluster({"logs", config, "nosuchnode"}, &out), 0);

  // down: head, node agent and actor all gone; the state file too.
  const std::vector<pid_t> before = ProcessesMentioning(dir + "/state");
  EXPECT_GE(before.size(), 3u) << "expected the head, the node agent and its actor";
  ASSERT_EQ(Cluster({"down", config}, &out), 0) << out;
  up = false;
  EXPECT_NE(out.find("stopped head head"), std::string::npos) << out;
  EXPECT_TRUE(WaitUntil([&] {
    for (pid_t p : before) {
      if (Running(p)) return false;
    }
    return ProcessesMentioning(dir + "/state").empty();
  }, seconds(10)))
      << "left behind: " << ProcessesMentioning(dir + "/state").size() << " process(es)";
  EXPECT_FALSE(fs::exists(dir + "/state/cluster.state"));
  EXPECT_EQ(Cluster({"down", config}, &out), 0) << out;  // nothing to stop: fine

  std::error_code ec;
  if (!::testing::Test::HasFailure()) fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace distri::testing
