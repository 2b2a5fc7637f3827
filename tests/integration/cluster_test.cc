// Multi-process integration tests of the runtime (label `integration`): a real distri-head, two
// distri-node agents on two "hosts" (network namespaces, or loopback; the output says which),
// one CPU actor (distri-worker) each, the sdxl-tiny model. Jobs are submitted with the C++
// client, and every image must be byte-identical to single-process `distri generate` with the
// same flags, also after an actor or a node agent is killed mid-job, and across a head crash.
// Kept gangs: consecutive gang jobs on the same actors reuse the gang's channels (and the CFG
// group channels of a gang of 4), still with the same bytes as `distri generate --ranks N`.
#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "runtime/common/png.h"
#include "tests/integration/test_cluster.h"
#include "tests/runtime/node/fake_head.h"

namespace distri::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Gone, or a zombie nobody reaped (a container's pid 1 may not reap).
bool ProcessGone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return true;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("State:", 0) == 0) return line.find('Z') != std::string::npos;
  }
  return true;
}

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_dir_ = new std::string(MakeTempDir("distri_integration"));
    model_ = new std::string(*suite_dir_ + "/sdxl-tiny");
    const int rc = RunToCompletion(BuiltBinaries().distri, {"model", "init", "--arch", "sdxl-tiny", *model_},
                                   *suite_dir_ + "/model-init.log");
    ASSERT_EQ(rc, 0) << ReadFile(*suite_dir_ + "/model-init.log").value_or("");
    references_ = new std::map<std::string, std::string>();
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(*suite_dir_, ec);
  }

  // Two nodes, one CPU actor each (FourActorClusterTest: two each).
  virtual TestCluster::Options ClusterOptions() const { return {}; }

  void SetUp() override {
    ASSERT_FALSE(model_->empty());
    const TestCluster::Options o = ClusterOptions();
    cluster_ = std::make_unique<TestCluster>(MakeTempDir("distri_cluster"), *model_, o);
    cluster_->StartHead();
    cluster_->StartNode(0);
    cluster_->StartNode(1);
    ASSERT_TRUE(cluster_->WaitForIdleActors(static_cast<size_t>(o.nodes * o.cpu_actors_per_node), seconds(90)))
        << cluster_->Logs();
  }
  void TearDown() override {
    if (!cluster_) return;
    const std::string dir = cluster_->dir();
    if (HasFailure()) std::printf("%s\n", cluster_->Logs().c_str());
    cluster_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(dir, ec);
  }

  static wire::JobSpec Spec(uint64_t seed, uint32_t steps) {
    wire::JobSpec s;
    s.prompt = "a red lighthouse at dawn";
    s.width = 64;
    s.height = 64;
    s.steps = steps;
    s.guidance = 5;
    s.sampler = "euler";
    s.seed = seed;
    s.gpus = 1;
    return s;
  }

  // The PNG `distri generate` writes for `spec` (cached per suite); a gang of spec.gpus > 1
  // ranks is rendered with `--ranks N` (threads, the local channel).
  std::string Reference(const wire::JobSpec& spec) {
    const std::string key = std::to_string(*spec.seed) + "-" + std::to_string(spec.steps) + "-" +
                            std::to_string(spec.width) + "-" + std::to_string(spec.gpus);
    auto it = references_->find(key);
    if (it != references_->end()) return it->second;
    const std::string out = *suite_dir_ + "/ref-" + key + ".png";
    std::vector<std::string> args = {
        "generate", "--model", *model_, "--prompt", spec.prompt, "--height", std::to_string(spec.height),
        "--width", std::to_string(spec.width), "--steps", std::to_string(spec.steps), "--guidance", "5",
        "--seed", std::to_string(*spec.seed), "--sampler", spec.sampler, "--device", "cpu", "--quiet", "--out", out};
    if (spec.gpus > 1) {
      args.push_back("--ranks");
      args.push_back(std::to_string(spec.gpus));
    }
    const int rc = RunToCompletion(BuiltBinaries().distri, args, out + ".log", {{"OMP_NUM_THREADS", "1"}});
    EXPECT_EQ(rc, 0) << ReadFile(out + ".log").value_or("");
    std::string bytes = ReadFile(out).value_or("");
    (*references_)[key] = bytes;
    return bytes;
  }

  JobId Submit(const wire::JobSpec& spec) {
    auto accepted = cluster_->client().Submit(spec);
    EXPECT_TRUE(accepted.ok()) << accepted.status().ToString();
    return accepted.ok() ? accepted->job_id : JobId();
  }

  // Waits until the job runs and has done `steps` steps; returns the actor running it.
  ActorId WaitForProgress(const JobId& job, uint32_t steps) {
    ActorId actor;
    const auto deadline = std::chrono::steady_clock::now() + seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      auto st = cluster_->client().GetJob(job);
      if (st.ok() && st->state == wire::JobState::kRunning && st->step >= steps) {
        auto cs = cluster_->Status();
        if (cs.ok()) {
          for (const auto& a : cs->actors) {
            if (a.job_id == job && a.state == wire::ActorState::kBusy) return a.actor_id;
          }
        }
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    ADD_FAILURE() << "job " << job.Short() << " did not reach step " << steps;
    return actor;
  }

  // Kills `victim`, the actor running a rank of `job` (`what` says which, for the log), and
  // waits for the job: a later attempt must finish it with the image `ref`.
  void KillAndExpectReRun(const JobId& job, const ActorId& victim, const std::string& what,
                          std::chrono::seconds timeout, const std::string& ref, wire::JobResult* result) {
    const pid_t pid = cluster_->ActorPid(victim);
    ASSERT_GT(pid, 0) << "no pid for actor " << victim.Short();
    std::printf("[ cluster  ] killing actor %s (pid %d), %s of job %s\n", victim.Short().c_str(), pid, what.c_str(),
                job.Short().c_str());
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    auto r = cluster_->client().WaitForJob(job, timeout);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_GE(r->attempt, 1u);
    EXPECT_TRUE(r->image == ref) << "the re-run's image differs from distri generate's";
    *result = *std::move(r);
  }

  // Lines of the cluster's log files (head, node agents, actors) that contain `text`.
  int CountInLogs(const std::string& text, const std::string& file_prefix = "") const {
    int n = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(cluster_->dir())) {
      if (entry.path().extension() != ".log") continue;
      if (entry.path().filename().string().rfind(file_prefix, 0) != 0) continue;
      std::ifstream in(entry.path());
      std::string line;
      while (std::getline(in, line)) n += line.find(text) != std::string::npos;
    }
    return n;
  }

  // Runs `spec` to its result and checks the image against `distri generate`.
  wire::JobResult RunAndCompare(const wire::JobSpec& spec) {
    const std::string ref = Reference(spec);
    EXPECT_FALSE(ref.empty());
    auto r = cluster_->client().WaitForJob(Submit(spec), seconds(240));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_EQ(r->gang.size(), spec.gpus);
    EXPECT_TRUE(r->image == ref) << "seed " << *spec.seed << " on " << spec.gpus << " ranks: the cluster's PNG ("
                                 << r->image.size() << " bytes) differs from distri generate --ranks " << spec.gpus
                                 << "'s (" << ref.size() << " bytes)";
    return *r;
  }

  static std::vector<ActorId> Members(const wire::JobResult& r) {
    std::vector<ActorId> out;
    for (const auto& m : r.gang) out.push_back(m.actor_id);
    return out;
  }

  static std::string* suite_dir_;
  static std::string* model_;
  static std::map<std::string, std::string>* references_;
  std::unique_ptr<TestCluster> cluster_;
};

std::string* ClusterTest::suite_dir_ = nullptr;
std::string* ClusterTest::model_ = nullptr;
std::map<std::string, std::string>* ClusterTest::references_ = nullptr;

TEST_F(ClusterTest, ImagesEqualSingleProcessGenerate) {
  std::printf("[ cluster  ] mode: %s\n", cluster_->Mode().c_str());
  const wire::JobSpec a = Spec(7, 8), b = Spec(8, 8);
  const JobId ja = Submit(a), jb = Submit(b);
  for (const auto& [job, spec] : {std::pair{ja, a}, std::pair{jb, b}}) {
    auto r = cluster_->client().WaitForJob(job, seconds(120));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->width, 64u);
    EXPECT_EQ(r->seed, *spec.seed);
    EXPECT_EQ(r->gang.size(), 1u);
    const std::string ref = Reference(spec);
    ASSERT_FALSE(ref.empty());
    EXPECT_TRUE(r->image == ref) << "seed " << *spec.seed << ": the cluster's PNG (" << r->image.size()
                                 << " bytes) differs from distri generate's (" << ref.size() << " bytes)";
  }
  // SIGTERM to a node agent: it stops its actors and exits 0; none survives; the head sees
  // the actor dead.
  auto status = cluster_->Status();
  ASSERT_TRUE(status.ok());
  std::vector<pid_t> actors;
  for (const auto& a : status->actors) {
    if (a.node_id == cluster_->node_id(0)) actors.push_back(cluster_->ActorPid(a.actor_id));
  }
  ASSERT_EQ(actors.size(), 1u);
  ASSERT_GT(actors[0], 0);
  const node::ExitStatus exit = cluster_->StopNode(0);
  EXPECT_EQ(exit.exit_code, 0) << exit.Describe();
  EXPECT_TRUE(WaitUntil([&] { return ProcessGone(actors[0]); }, seconds(5)));
  EXPECT_TRUE(WaitUntil([&] {
    auto st = cluster_->Status();
    if (!st.ok()) return false;
    for (const auto& a : st->actors) {
      if (a.node_id == cluster_->node_id(0) && a.state != wire::ActorState::kDead) return false;
    }
    return true;
  }, seconds(10)));
}

// Latent previews (JobSpec.preview_every): rank 0's PNGs of the latent reach GetJob with
// with_preview at latent resolution (image / 8), and the image is the same bytes as without.
TEST_F(ClusterTest, LatentPreviewsDoNotChangeTheImage) {
  wire::JobSpec spec = Spec(41, 200);
  spec.preview_every = 1;
  const JobId job = Submit(spec);
  std::map<uint32_t, std::string> previews;  // by step
  const auto deadline = std::chrono::steady_clock::now() + seconds(240);
  wire::JobState state = wire::JobState::kPending;
  while (!wire::IsTerminal(state) && std::chrono::steady_clock::now() < deadline) {
    auto st = cluster_->client().GetJob(job, /*with_preview=*/true);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    state = st->state;
    if (!st->preview.empty()) previews[st->preview_step] = st->preview;
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(state, wire::JobState::kSucceeded);
  ASSERT_FALSE(previews.empty()) << "no preview seen while the job ran";
  EXPECT_LT(previews.rbegin()->first, spec.steps);  // none after the last step
  for (const auto& [step, png] : previews) {
    Result<RgbImage> img = DecodePng(png);
    ASSERT_TRUE(img.ok()) << "step " << step << ": " << img.status().ToString();
    EXPECT_EQ(img->width, 64 / 8);
    EXPECT_EQ(img->height, 64 / 8);
  }
  std::printf("[ cluster  ] %zu previews seen (steps %u..%u)\n", previews.size(), previews.begin()->first,
              previews.rbegin()->first);
  auto with = cluster_->client().GetResult(job);
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  spec.preview_every = 0;
  auto without = cluster_->client().WaitForJob(Submit(spec), seconds(240));
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  EXPECT_TRUE(with->image == without->image) << "previews changed the image";
  const std::string ref = Reference(spec);
  EXPECT_TRUE(with->image == ref) << "the image with previews differs from distri generate's";
}

TEST_F(ClusterTest, PatchParallelJobAcrossTwoHostsOverUcx) {
  wire::JobSpec spec = Spec(31, 8);
  spec.width = spec.height = 128;
  spec.gpus = 2;
  const std::string ref = Reference(spec);
  ASSERT_FALSE(ref.empty());
  const JobId job = Submit(spec);
  auto r = cluster_->client().WaitForJob(job, seconds(180));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->gang.size(), 2u);
  EXPECT_NE(r->gang[0].node_id, r->gang[1].node_id) << "the gang should span both hosts";
  std::printf("[ cluster  ] gang of 2 on %s and %s\n", r->gang[0].hostname.c_str(), r->gang[1].hostname.c_str());
  EXPECT_TRUE(r->image == ref) << "the patch-parallel image (UCX across hosts) differs from `distri generate "
                                  "--ranks 2`'s (local channel)";
}

TEST_F(ClusterTest, KilledActorMidJobGivesTheSameImage) {
  const wire::JobSpec spec = Spec(11, 600);
  const std::string ref = Reference(spec);
  const JobId job = Submit(spec);
  const ActorId victim = WaitForProgress(job, 20);
  ASSERT_FALSE(victim.IsNil());
  wire::JobResult r;
  KillAndExpectReRun(job, victim, "mid-job", seconds(180), ref, &r);
  if (HasFatalFailure()) return;
  // The node agent restarted the killed actor: both actors are back.
  EXPECT_TRUE(cluster_->WaitForIdleActors(2, seconds(60)));
}

TEST_F(ClusterTest, KilledRankOfAGangMidJobGivesTheSameImage) {
  wire::JobSpec spec = Spec(32, 300);
  spec.width = spec.height = 128;
  spec.gpus = 2;
  const std::string ref = Reference(spec);
  const JobId job = Submit(spec);
  const ActorId victim = WaitForProgress(job, 20);
  ASSERT_FALSE(victim.IsNil());
  // The surviving rank is cancelled (its channel aborted); once the node agent has restarted
  // the killed actor, the job runs again on a full gang.
  wire::JobResult r;
  KillAndExpectReRun(job, victim, "one rank of the gang", seconds(240), ref, &r);
  if (HasFatalFailure()) return;
  EXPECT_EQ(r.gang.size(), 2u);
}

// docs/runtime-design.md, "Kept gangs": the second gang job on the same two actors reuses the
// gang (the head says so; the actors run it on their kept channels, no rendezvous) and gives
// the same bytes as `distri generate --ranks 2`. A rank of a kept gang killed mid-job: the
// survivor drops the gang, the job re-runs on a new gang, same image.
TEST_F(ClusterTest, ConsecutiveGangJobsReuseTheKeptGangAndSurviveAKilledRank) {
  std::printf("[ cluster  ] mode: %s\n", cluster_->Mode().c_str());
  wire::JobSpec spec = Spec(41, 8);
  spec.width = spec.height = 128;
  spec.gpus = 2;
  const wire::JobResult first = RunAndCompare(spec);
  ASSERT_EQ(first.gang.size(), 2u);
  EXPECT_EQ(CountInLogs("reuses kept gang", "head"), 0);
  // Both ranks have reported (the result needs rank 0 only) once both actors are idle again.
  ASSERT_TRUE(cluster_->WaitForIdleActors(2, seconds(30)));
  spec.seed = 42;
  const wire::JobResult second = RunAndCompare(spec);
  EXPECT_EQ(Members(second), Members(first));
  EXPECT_EQ(CountInLogs("reuses kept gang", "head"), 1) << "the head did not reuse the kept gang";
  EXPECT_EQ(CountInLogs("kept channels of gang", "actor"), 2) << "both actors should reuse their channels";
  ASSERT_TRUE(cluster_->WaitForIdleActors(2, seconds(30)));

  // A long job on the same kept gang; one rank is killed mid-job.
  wire::JobSpec slow = Spec(33, 300);
  slow.width = slow.height = 128;
  slow.gpus = 2;
  const std::string ref = Reference(slow);
  const JobId job = Submit(slow);
  const ActorId victim = WaitForProgress(job, 20);
  ASSERT_FALSE(victim.IsNil());
  EXPECT_EQ(CountInLogs("reuses kept gang", "head"), 2);
  wire::JobResult r;
  KillAndExpectReRun(job, victim, "one rank of the kept gang", seconds(240), ref, &r);
  if (HasFatalFailure()) return;
  EXPECT_EQ(r.gang.size(), 2u);
  // The re-run formed a new gang: the dead rank's gang was not reused.
  EXPECT_EQ(CountInLogs("reuses kept gang", "head"), 2);
}

TEST_F(ClusterTest, KilledNodeAgentMidJobGivesTheSameImage) {
  const wire::JobSpec spec = Spec(12, 600);
  const std::string ref = Reference(spec);
  const JobId job = Submit(spec);
  const ActorId victim = WaitForProgress(job, 20);
  ASSERT_FALSE(victim.IsNil());
  const int node = cluster_->NodeOf(victim);
  ASSERT_GE(node, 0);
  const pid_t actor_pid = cluster_->ActorPid(victim);
  std::printf("[ cluster  ] killing node agent %d (hosting actor %s) mid-job\n", node, victim.Short().c_str());
  cluster_->KillNode(node);
  // Its actor dies with it (no orphan keeps computing).
  EXPECT_TRUE(WaitUntil([&] { return ProcessGone(actor_pid); }, seconds(10))) << "actor pid " << actor_pid;
  auto r = cluster_->client().WaitForJob(job, seconds(180));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(r->attempt, 1u);
  ASSERT_EQ(r->gang.size(), 1u);
  EXPECT_NE(r->gang[0].node_id, cluster_->node_id(node));
  EXPECT_TRUE(r->image == ref) << "the re-run image differs from distri generate's";
}

TEST_F(ClusterTest, HeadRestartLosesNoJob) {
  std::vector<wire::JobSpec> specs = {Spec(21, 200), Spec(22, 200), Spec(23, 200), Spec(24, 8)};
  std::vector<JobId> jobs;
  for (const auto& s : specs) jobs.push_back(Submit(s));
  // Crash while the first job runs (or, on a fast machine, just after it finished).
  EXPECT_TRUE(WaitUntil([&] {
    auto st = cluster_->client().GetJob(jobs[0]);
    return st.ok() && ((st->state == wire::JobState::kRunning && st->step >= 10) || wire::IsTerminal(st->state));
  }, seconds(60)));
  std::printf("[ cluster  ] crashing the head (SIGKILL) with %zu jobs queued or running\n", jobs.size());
  cluster_->StopHead(/*crash=*/true);
  std::this_thread::sleep_for(milliseconds(500));
  cluster_->StartHead();
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto r = cluster_->client().WaitForJob(jobs[i], seconds(240));
    ASSERT_TRUE(r.ok()) << "job " << i << ": " << r.status().ToString();
    EXPECT_TRUE(r->image == Reference(specs[i])) << "job " << i << " (seed " << *specs[i].seed << ")";
  }
}

// Four CPU actors, two per node.
class FourActorClusterTest : public ClusterTest {
 protected:
  TestCluster::Options ClusterOptions() const override {
    TestCluster::Options o;
    o.cpu_actors_per_node = 2;
    return o;
  }
};

// A gang of 4 with guidance splits the CFG halves (2 groups x 2 strips): the stale patch
// exchanges go over per-group channels, as in `distri generate --ranks 4`. The second job on
// the same four actors reuses the kept gang and its group channels; the bytes equal
// `distri generate --ranks 4`'s every time. Consecutive gangs of 2 land on a kept gang of 2.
TEST_F(FourActorClusterTest, CfgSplitGangOfFourWithGroupChannelsReusesTheKeptGang) {
  std::printf("[ cluster  ] mode: %s\n", cluster_->Mode().c_str());
  wire::JobSpec four = Spec(51, 8);
  four.width = four.height = 128;
  four.gpus = 4;
  const wire::JobResult first = RunAndCompare(four);
  ASSERT_TRUE(cluster_->WaitForIdleActors(4, seconds(30)));
  four.seed = 52;
  const wire::JobResult second = RunAndCompare(four);
  EXPECT_EQ(Members(second), Members(first));
  EXPECT_EQ(CountInLogs("reuses kept gang", "head"), 1) << "the head did not reuse the kept gang of 4";
  // Every rank reused its gang channel and the group channel the first job made.
  EXPECT_EQ(CountInLogs("reused, 1 group channel(s)", "actor"), 4);
  ASSERT_TRUE(cluster_->WaitForIdleActors(4, seconds(30)));

  // Gangs of 2 after it: a new gang, then that gang kept (the idle kept gang is preferred).
  wire::JobSpec two = Spec(53, 8);
  two.width = two.height = 128;
  two.gpus = 2;
  const wire::JobResult a = RunAndCompare(two);
  ASSERT_TRUE(cluster_->WaitForIdleActors(4, seconds(30)));
  two.seed = 54;
  const wire::JobResult b = RunAndCompare(two);
  EXPECT_EQ(Members(b), Members(a));
  EXPECT_EQ(CountInLogs("reuses kept gang", "head"), 2);
}

}  // namespace
}  // namespace distri::testing
