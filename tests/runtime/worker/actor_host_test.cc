// ActorHost against a fake head (tests/runtime/node/fake_head.h) with a small deterministic
// executor: registration and heartbeats, progress and results, gangs of two over the local
// channel through a TCP rendezvous, kept gangs (channels and group channels reused by the next
// task of the same gang, parked otherwise and destroyed on ReleaseGang), cancellation,
// preemption by a newer task, the watchdog, and re-registration after a head restart.
#include <gtest/gtest.h>

#include <filesystem>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/channel/tcp_rendezvous.h"
#include "runtime/worker/actor_host.h"
#include "tests/runtime/node/fake_head.h"

namespace distri::worker {
namespace {

using distri::testing::FakeHead;
using distri::testing::MakeTempDir;
using distri::testing::WaitUntil;
using std::chrono::milliseconds;

// Each step: checks cancellation, sums (rank + 1) over the gang with AllReduce, sleeps
// step_ms. Rank 0 returns "img seed=<seed> sum=<last sum> steps=<n>". Step `stall_at` (if > 0)
// sleeps stall_ms first, ignoring cancellation (a stuck kernel).
// `report_progress` false: no TaskProgress at all. While `hold` is set, a step waits before
// finishing (the test opens it).
class CountingExecutor : public TaskExecutor {
 public:
  int step_ms = 5;
  int stall_at = 0;
  int stall_ms = 0;
  bool report_progress = true;
  std::atomic<bool> hold{false};
  std::atomic<int> runs{0};
  std::atomic<int> returned{0};
  std::atomic<bool> saw_channel{false};

  Result<TaskOutput> Run(const wire::AssignTask& task, GangChannels* gang, const ProgressFn& progress,
                         const CancelFn& cancelled) override {
    runs++;
    channel::Channel* channel = gang ? gang->gang() : nullptr;
    struct Count {
      std::atomic<int>& n;
      ~Count() { n++; }
    } count{returned};
    if ((task.gang.size() > 1) != (channel != nullptr)) return Status::Internal("channel does not match the gang");
    if (channel) saw_channel = true;
    const int steps = static_cast<int>(task.job.steps);
    int64_t sum = 0;
    for (int i = 1; i <= steps; ++i) {
      if (i == stall_at) std::this_thread::sleep_for(milliseconds(stall_ms));
      if (cancelled()) return Status::Cancelled("cancelled at step " + std::to_string(i));
      int64_t mine = task.rank + 1;
      sum = mine;
      if (channel) {
        DISTRI_RETURN_IF_ERROR(channel->AllReduce(channel::CpuBuffer(&mine, 1), channel::CpuBuffer(&sum, 1)));
      }
      std::this_thread::sleep_for(milliseconds(step_ms));
      while (hold.load() && !cancelled()) std::this_thread::sleep_for(milliseconds(5));
      if (report_progress) progress(i, steps);
    }
    TaskOutput out;
    if (task.rank == 0) {
      out.image = "img seed=" + std::to_string(*task.job.seed) + " sum=" + std::to_string(sum) +
                  " steps=" + std::to_string(steps);
      out.width = task.job.width;
      out.height = task.job.height;
    }
    return out;
  }
};

// For kept gangs: each step sums (rank + 1) over the gang channel and over a group channel
// (group 0: the whole gang, made through GangChannels::Group), and records which channels it
// got. On an error (a cancel included) it records the channels' status, after waiting briefly
// for the abort to reach them (the cancel flag is set just before the host aborts).
class GangExecutor : public TaskExecutor {
 public:
  std::atomic<int> step_ms{5};
  std::atomic<int> runs{0};
  std::atomic<int> releases{0};
  std::mutex mu;
  std::vector<channel::Channel*> gangs, groups;  // per run
  Status gang_status_on_error, group_status_on_error;

  Result<TaskOutput> Run(const wire::AssignTask& task, GangChannels* gang, const ProgressFn& progress,
                         const CancelFn& cancelled) override {
    runs++;
    if (gang == nullptr) return TaskOutput{};
    DISTRI_ASSIGN_OR_RETURN(channel::Channel* group, gang->Group(0, static_cast<int>(task.rank),
                                                                 static_cast<int>(task.gang.size())));
    {
      std::lock_guard<std::mutex> lock(mu);
      gangs.push_back(gang->gang());
      groups.push_back(group);
    }
    auto fail = [&](Status s) {
      for (int i = 0; i < 200 && group->status().ok(); ++i) std::this_thread::sleep_for(milliseconds(10));
      std::lock_guard<std::mutex> lock(mu);
      gang_status_on_error = gang->gang()->status();
      group_status_on_error = group->status();
      return s;
    };
    const int steps = static_cast<int>(task.job.steps);
    int64_t sum = 0, group_sum = 0;
    for (int i = 1; i <= steps; ++i) {
      if (cancelled()) return fail(Status::Cancelled("cancelled at step " + std::to_string(i)));
      int64_t mine = task.rank + 1;
      if (Status s = gang->gang()->AllReduce(channel::CpuBuffer(&mine, 1), channel::CpuBuffer(&sum, 1)); !s.ok()) {
        return fail(s);
      }
      if (Status s = group->AllReduce(channel::CpuBuffer(&mine, 1), channel::CpuBuffer(&group_sum, 1)); !s.ok()) {
        return fail(s);
      }
      std::this_thread::sleep_for(milliseconds(step_ms.load()));
      progress(i, steps);
    }
    TaskOutput out;
    if (task.rank == 0) out.image = "sum=" + std::to_string(sum) + " group=" + std::to_string(group_sum);
    return out;
  }
  void ReleaseGang() override { releases++; }
};

wire::AssignTask MakeTask(int world, int rank, uint32_t steps, const std::string& rendezvous = "") {
  wire::AssignTask t;
  static const JobId job = JobId::Random();
  t.job_id = job;
  t.attempt = 0;
  t.gang_id = GangId::Random();
  t.rank = static_cast<uint32_t>(rank);
  for (int r = 0; r < world; ++r) {
    wire::GangMember m;
    m.rank = static_cast<uint32_t>(r);
    m.node_id = NodeId::Random();
    m.actor_id = ActorId::Random();
    m.hostname = "localhost";
    t.gang.push_back(m);
  }
  t.job.prompt = "a test";
  t.job.width = 64;
  t.job.height = 64;
  t.job.steps = steps;
  t.job.guidance = 5;
  t.job.sampler = "euler";
  t.job.seed = 42;
  t.channel_backend = "local";
  t.rendezvous = rendezvous;
  return t;
}

// A gang of two whose tasks go to both hosts; `attempt` tells the tasks apart.
struct GangPair {
  wire::AssignTask t0, t1;
};
GangPair TasksOf(const GangId& gang, uint32_t attempt, uint32_t steps, const std::string& rdv) {
  GangPair p;
  p.t0 = MakeTask(2, 0, steps, rdv);
  p.t0.gang_id = gang;
  p.t0.attempt = attempt;
  p.t1 = p.t0;
  p.t1.rank = 1;
  return p;
}

class ActorHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("distri_actor_host");
    head_ = std::make_unique<FakeHead>(dir_, 50);
  }

  ActorHostOptions Options() {
    ActorHostOptions o;
    o.head = head_->endpoint();
    o.keys_dir = dir_;
    o.actor_id = ActorId::Random();
    o.node_id = NodeId::Random();
    o.model = "tiny";
    o.device = "cpu";
    o.register_retry = milliseconds(100);
    o.channel.connect_timeout = milliseconds(10'000);
    o.channel.op_timeout = milliseconds(20'000);
    return o;
  }

  // The head-side routing id of the actor that registered as `id`.
  std::string PeerOf(const ActorId& id) {
    std::string peer;
    for (const auto& r : head_->Messages()) {
      if (auto* m = std::get_if<wire::RegisterActor>(&r.message); m && m->actor_id == id) peer = r.peer;
    }
    return peer;
  }
  std::vector<wire::TaskDone> Dones() { return head_->All<wire::TaskDone>(); }

  // A TCP rendezvous for gang tasks (the head's, in a cluster), living as long as the test;
  // returns its address for AssignTask.rendezvous.
  std::string StartRendezvous() {
    rendezvous_ = channel::TcpRendezvousServer::Listen("127.0.0.1", 0).value();
    EXPECT_TRUE(rendezvous_->Start().ok());
    return "tcp://127.0.0.1:" + std::to_string(rendezvous_->port());
  }

  std::unique_ptr<ActorHost> StartHost(const ActorHostOptions& o, TaskExecutor* exec) {
    auto host = ActorHost::Create(o, exec);
    EXPECT_TRUE(host.ok()) << host.status().ToString();
    EXPECT_TRUE((*host)->Start().ok());
    EXPECT_TRUE(WaitUntil([&] { return (*host)->registrations() >= 1 && !PeerOf(o.actor_id).empty(); }));
    return std::move(*host);
  }

  // Two hosts for gangs of two, h0 running e0 and h1 running e1, the options they were started
  // with, and the address of the rendezvous for their tasks (StartRendezvous).
  struct HostPair {
    std::string rdv;
    ActorHostOptions o0, o1;
    std::unique_ptr<ActorHost> h0, h1;
  };
  HostPair StartHostPair(TaskExecutor* e0, TaskExecutor* e1,
                         size_t max_parked_gangs = ActorHostOptions().max_parked_gangs) {
    HostPair p;
    p.rdv = StartRendezvous();
    p.o0 = Options();
    p.o1 = Options();
    p.o0.max_parked_gangs = p.o1.max_parked_gangs = max_parked_gangs;
    p.h0 = StartHost(p.o0, e0);
    p.h1 = StartHost(p.o1, e1);
    return p;
  }
  // The two ranks' tasks of a gang of two, one to each host.
  void SendToBoth(const HostPair& hosts, const GangPair& p) {
    head_->SendTo(PeerOf(hosts.o0.actor_id), p.t0);
    head_->SendTo(PeerOf(hosts.o1.actor_id), p.t1);
  }
  // SendToBoth; true once both TaskDone came (within `timeout`).
  bool RunOnBoth(const HostPair& hosts, const GangPair& p, milliseconds timeout = std::chrono::seconds(10)) {
    const size_t before = Dones().size();
    SendToBoth(hosts, p);
    return WaitUntil([&] { return Dones().size() == before + 2; }, timeout);
  }
  // Sends `task` to the host started with `o`; true once its TaskDone came.
  bool RunOn(const ActorHostOptions& o, const wire::AssignTask& task) {
    const size_t before = Dones().size();
    head_->SendTo(PeerOf(o.actor_id), task);
    return WaitUntil([&] { return Dones().size() == before + 1; });
  }

  void TearDown() override {
    head_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
  std::unique_ptr<FakeHead> head_;
  std::unique_ptr<channel::TcpRendezvousServer> rendezvous_;
};

TEST_F(ActorHostTest, RegistersHeartbeatsAndRunsAGangOfOne) {
  CountingExecutor exec;
  auto o = Options();
  o.gpu_index = -1;
  auto host = StartHost(o, &exec);
  const auto regs = head_->All<wire::RegisterActor>();
  ASSERT_EQ(regs.size(), 1u);
  EXPECT_EQ(regs[0].actor_id, o.actor_id);
  EXPECT_EQ(regs[0].node_id, o.node_id);
  EXPECT_EQ(regs[0].gpu_index, -1);
  EXPECT_EQ(regs[0].pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(regs[0].model, "tiny");
  EXPECT_EQ(regs[0].device, "cpu");
  ASSERT_TRUE(WaitUntil([&] { return head_->All<wire::Heartbeat>().size() >= 2; }));

  const wire::AssignTask task = MakeTask(1, 0, 6);
  head_->SendTo(PeerOf(o.actor_id), task);
  ASSERT_TRUE(WaitUntil([&] { return !Dones().empty(); }));
  const wire::TaskDone done = Dones()[0];
  EXPECT_EQ(done.error_code, 0) << done.error_message;
  EXPECT_EQ(done.job_id, task.job_id);
  EXPECT_EQ(done.image, "img seed=42 sum=1 steps=6");
  EXPECT_EQ(done.width, 64u);
  EXPECT_FALSE(exec.saw_channel);
  const auto progress = head_->All<wire::TaskProgress>();
  ASSERT_EQ(progress.size(), 6u);
  for (uint32_t i = 0; i < 6; ++i) {
    EXPECT_EQ(progress[i].step, i + 1);
    EXPECT_EQ(progress[i].total_steps, 6u);
  }
  EXPECT_FALSE(host->busy());
  // A repeated AssignTask of a finished task runs again (the head asked); a duplicate while it
  // runs is ignored (tested below).
  host->Stop();
}

TEST_F(ActorHostTest, GangOfTwoSharesAChannelAndCancelAbortsIt) {
  CountingExecutor e0, e1;
  const HostPair hosts = StartHostPair(&e0, &e1);

  // A full run: both ranks sum 1 + 2.
  ASSERT_TRUE(RunOnBoth(hosts, TasksOf(GangId::Random(), 0, 4, hosts.rdv)));
  for (const auto& d : Dones()) {
    EXPECT_EQ(d.error_code, 0) << d.error_message;
    EXPECT_EQ(d.image, d.rank == 0 ? "img seed=42 sum=3 steps=4" : "");
  }
  EXPECT_TRUE(e0.saw_channel && e1.saw_channel);

  // Attempt 1, long: cancel rank 0 mid-run. Rank 0 answers Cancelled; rank 1's channel breaks.
  e0.step_ms = e1.step_ms = 50;
  const GangPair a = TasksOf(GangId::Random(), 1, 200, hosts.rdv);
  SendToBoth(hosts, a);
  ASSERT_TRUE(WaitUntil([&] { return head_->All<wire::TaskProgress>().size() >= 4 + 4 + 4; }));
  head_->SendTo(PeerOf(hosts.o0.actor_id), wire::CancelTask{a.t0.job_id, 1});
  ASSERT_TRUE(WaitUntil([&] { return Dones().size() == 4; }, milliseconds(30'000)));
  for (const auto& d : Dones()) {
    if (d.attempt != 1) continue;
    if (d.rank == 0) {
      EXPECT_EQ(d.error_code, static_cast<int32_t>(StatusCode::kCancelled)) << d.error_message;
      EXPECT_EQ(d.error_message, "cancelled by the head");
    } else {
      // The local backend aborts the whole in-process gang: rank 1 sees Aborted.
      EXPECT_NE(d.error_code, 0);
    }
  }
}

TEST_F(ActorHostTest, ConsecutiveTasksOfAGangReuseItsChannelsAndGroupChannels) {
  GangExecutor e0, e1;
  const HostPair hosts = StartHostPair(&e0, &e1);
  ActorHost *h0 = hosts.h0.get(), *h1 = hosts.h1.get();
  auto run = [&](const GangPair& p) {
    const size_t before = Dones().size();
    EXPECT_TRUE(RunOnBoth(hosts, p, milliseconds(20'000)));
    for (size_t i = before; i < Dones().size(); ++i) {
      const auto d = Dones()[i];
      EXPECT_EQ(d.error_code, 0) << d.error_message;
      EXPECT_EQ(d.image, d.rank == 0 ? "sum=3 group=3" : "");
    }
  };
  const GangId g = GangId::Random();
  run(TasksOf(g, 0, 3, hosts.rdv));
  EXPECT_EQ(h0->gangs_connected(), 1);
  EXPECT_EQ(h0->gangs_reused(), 0);
  // The next task of the same gang: the same channels, no second rendezvous (the rendezvous
  // keys are write-once, so a second one under the same prefix could not even succeed).
  run(TasksOf(g, 1, 3, hosts.rdv));
  for (auto* h : {h0, h1}) {
    EXPECT_EQ(h->gangs_connected(), 1);
    EXPECT_EQ(h->gangs_reused(), 1);
  }
  for (GangExecutor* e : {&e0, &e1}) {
    std::lock_guard<std::mutex> lock(e->mu);
    ASSERT_EQ(e->gangs.size(), 2u);
    EXPECT_EQ(e->gangs[1], e->gangs[0]);
    EXPECT_EQ(e->groups[1], e->groups[0]);
    EXPECT_EQ(e->releases.load(), 0);
  }
  // Another gang id: the kept channels are parked, not destroyed (the executor told first),
  // new ones made.
  run(TasksOf(GangId::Random(), 2, 3, hosts.rdv));
  for (auto* h : {h0, h1}) {
    EXPECT_EQ(h->gangs_connected(), 2);
    EXPECT_EQ(h->gangs_reused(), 1);
    EXPECT_EQ(h->gangs_parked(), 1);
    EXPECT_EQ(h->gangs_destroyed(), 0);
  }
  EXPECT_EQ(e0.releases.load(), 1);
  EXPECT_EQ(e1.releases.load(), 1);
  // A gang of one drops them too.
  wire::AssignTask solo = MakeTask(1, 0, 2);
  solo.attempt = 3;
  head_->SendTo(PeerOf(hosts.o0.actor_id), solo);
  ASSERT_TRUE(WaitUntil([&] { return Dones().size() == 7; }));
  EXPECT_EQ(Dones().back().error_code, 0) << Dones().back().error_message;
  EXPECT_EQ(e0.releases.load(), 2);
  EXPECT_EQ(h0->gangs_parked(), 2);
  EXPECT_EQ(h0->gangs_destroyed(), 0);
}

// docs/runtime-design.md, "Kept gangs": parked and kept sets are destroyed when the head
// releases them (together on every rank), an unknown gang's release is a no-op, and beyond
// max_parked_gangs the oldest parked set is destroyed without the head.
TEST_F(ActorHostTest, ReleaseGangDestroysParkedAndKeptSetsAndTheCapBoundsParkedOnes) {
  GangExecutor e0, e1;
  const HostPair hosts = StartHostPair(&e0, &e1, /*max_parked_gangs=*/2);
  ActorHost *h0 = hosts.h0.get(), *h1 = hosts.h1.get();
  uint32_t attempt = 0;
  auto run = [&](const GangId& g) {
    const size_t before = Dones().size();
    ASSERT_TRUE(RunOnBoth(hosts, TasksOf(g, attempt++, 2, hosts.rdv), milliseconds(20'000)));
    for (size_t i = before; i < Dones().size(); ++i) EXPECT_EQ(Dones()[i].error_code, 0) << Dones()[i].error_message;
  };
  auto release = [&](const GangId& g) {
    head_->SendTo(PeerOf(hosts.o0.actor_id), wire::ReleaseGang{g});
    head_->SendTo(PeerOf(hosts.o1.actor_id), wire::ReleaseGang{g});
  };
  const GangId g1 = GangId::Random(), g2 = GangId::Random(), g3 = GangId::Random();
  run(g1);
  run(g2);  // parks g1
  for (auto* h : {h0, h1}) EXPECT_EQ(h->gangs_parked(), 1);
  // The head releases the parked g1: destroyed on both ranks.
  release(g1);
  ASSERT_TRUE(WaitUntil([&] { return h0->gangs_destroyed() == 1 && h1->gangs_destroyed() == 1; }));
  EXPECT_EQ(h0->gangs_parked(), 0);
  EXPECT_EQ(e0.releases.load(), 1);  // told once, when parked
  // An unknown gang: nothing happens (a debug log).
  release(GangId::Random());
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(h0->gangs_destroyed(), 1);
  EXPECT_EQ(h1->gangs_destroyed(), 1);
  // The kept g2 (idle): the executor is told first, then the set is destroyed; g2 is no
  // longer kept, so a task naming it fails at once.
  release(g2);
  ASSERT_TRUE(WaitUntil([&] { return h0->gangs_destroyed() == 2 && h1->gangs_destroyed() == 2; }));
  EXPECT_EQ(e0.releases.load(), 2);
  EXPECT_EQ(e1.releases.load(), 2);
  ASSERT_TRUE(RunOn(hosts.o0, TasksOf(g2, attempt++, 2, hosts.rdv).t0));
  EXPECT_EQ(Dones().back().error_code, static_cast<int32_t>(StatusCode::kFailedPrecondition));
  // The cap: g3, g4, g5 in turn park g3 and g4; g6 parks g5 and pushes g3 out unilaterally.
  run(g3);
  const GangId g4 = GangId::Random(), g5 = GangId::Random();
  run(g4);
  run(g5);
  for (auto* h : {h0, h1}) {
    EXPECT_EQ(h->gangs_parked(), 2);
    EXPECT_EQ(h->gangs_destroyed(), 2);
  }
  run(GangId::Random());
  ASSERT_TRUE(WaitUntil([&] { return h0->gangs_destroyed() == 3 && h1->gangs_destroyed() == 3; }));
  EXPECT_EQ(h0->gangs_parked(), 2);
  // g3 is gone: releasing it now is a no-op; g4 is still parked and goes on release.
  release(g3);
  release(g4);
  ASSERT_TRUE(WaitUntil([&] { return h0->gangs_destroyed() == 4 && h1->gangs_destroyed() == 4; }));
  EXPECT_EQ(h0->gangs_parked(), 1);
  EXPECT_EQ(h1->gangs_parked(), 1);
}

TEST_F(ActorHostTest, CancelAbortsTheKeptGangsGroupChannelsAndDropsThem) {
  GangExecutor e0, e1;
  const HostPair hosts = StartHostPair(&e0, &e1);
  const GangId g = GangId::Random();
  ASSERT_TRUE(RunOnBoth(hosts, TasksOf(g, 0, 2, hosts.rdv)));
  // The second task of the gang runs on the kept channels (group channel made by the first)
  // and is cancelled on rank 0: the abort reaches the kept group channel too.
  e0.step_ms = e1.step_ms = 50;
  const GangPair second = TasksOf(g, 1, 200, hosts.rdv);
  SendToBoth(hosts, second);
  ASSERT_TRUE(WaitUntil([&] { return head_->All<wire::TaskProgress>().size() >= 2 + 2 + 4; }));
  EXPECT_EQ(hosts.h0->gangs_reused(), 1);
  head_->SendTo(PeerOf(hosts.o0.actor_id), wire::CancelTask{second.t0.job_id, 1});
  ASSERT_TRUE(WaitUntil([&] { return Dones().size() == 4; }, milliseconds(30'000)));
  {
    std::lock_guard<std::mutex> lock(e0.mu);
    EXPECT_EQ(e0.gang_status_on_error.code(), StatusCode::kAborted) << e0.gang_status_on_error.ToString();
    EXPECT_EQ(e0.group_status_on_error.code(), StatusCode::kAborted) << e0.group_status_on_error.ToString();
  }
  ASSERT_TRUE(WaitUntil([&] { return e0.releases.load() == 1 && e1.releases.load() == 1; }));
  // The same gang id again: this actor dropped its channels, so the task fails at once.
  const int runs = e0.runs.load();
  const GangPair third = TasksOf(g, 2, 2, hosts.rdv);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(RunOn(hosts.o0, third.t0));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(3000));
  const auto d = Dones().back();
  EXPECT_EQ(d.error_code, static_cast<int32_t>(StatusCode::kFailedPrecondition)) << d.error_message;
  EXPECT_NE(d.error_message.find("no longer keeps"), std::string::npos) << d.error_message;
  EXPECT_EQ(e0.runs.load(), runs);
  EXPECT_EQ(hosts.h0->gangs_connected(), 1);
}

TEST_F(ActorHostTest, RegisteringAgainParksTheKeptGang) {
  GangExecutor e0, e1;
  const HostPair hosts = StartHostPair(&e0, &e1);
  ActorHost *h0 = hosts.h0.get(), *h1 = hosts.h1.get();
  const GangId g = GangId::Random();
  ASSERT_TRUE(RunOnBoth(hosts, TasksOf(g, 0, 2, hosts.rdv)));
  head_->Restart();
  ASSERT_TRUE(WaitUntil([&] { return h0->registrations() == 2 && h1->registrations() == 2; }));
  ASSERT_TRUE(WaitUntil([&] { return !PeerOf(hosts.o0.actor_id).empty(); }));
  ASSERT_TRUE(RunOn(hosts.o0, TasksOf(g, 1, 2, hosts.rdv).t0));
  const auto d = Dones().back();
  EXPECT_EQ(d.error_code, static_cast<int32_t>(StatusCode::kFailedPrecondition)) << d.error_message;
  EXPECT_EQ(e0.releases.load(), 1);
  EXPECT_EQ(h0->gangs_reused(), 0);
  // Parked (the new head may not know the gang), not destroyed.
  EXPECT_EQ(h0->gangs_parked(), 1);
  EXPECT_EQ(h0->gangs_destroyed(), 0);
}

TEST_F(ActorHostTest, NewTaskSupersedesTheRunningOneAndDuplicatesAreIgnored) {
  CountingExecutor exec;
  exec.step_ms = 50;
  auto o = Options();
  auto host = StartHost(o, &exec);
  wire::AssignTask first = MakeTask(1, 0, 1000);
  head_->SendTo(PeerOf(o.actor_id), first);
  ASSERT_TRUE(WaitUntil([&] { return head_->All<wire::TaskProgress>().size() >= 2; }));
  head_->SendTo(PeerOf(o.actor_id), first);  // duplicate: ignored
  wire::AssignTask second = MakeTask(1, 0, 3);
  second.attempt = 1;
  head_->SendTo(PeerOf(o.actor_id), second);
  ASSERT_TRUE(WaitUntil([&] { return Dones().size() == 2; }));
  const auto d = Dones();
  EXPECT_EQ(d[0].attempt, 0u);
  EXPECT_EQ(d[0].error_code, static_cast<int32_t>(StatusCode::kCancelled));
  EXPECT_NE(d[0].error_message.find("superseded"), std::string::npos) << d[0].error_message;
  EXPECT_EQ(d[1].attempt, 1u);
  EXPECT_EQ(d[1].error_code, 0) << d[1].error_message;
  EXPECT_EQ(exec.runs.load(), 2);
}

TEST_F(ActorHostTest, WatchdogReportsAStuckStepAndCallsOnHung) {
  CountingExecutor exec;
  exec.step_ms = 10;
  exec.stall_at = 4;
  exec.stall_ms = 1500;
  auto o = Options();
  o.watchdog.min_step_bound = milliseconds(200);
  o.watchdog.first_step_bound = milliseconds(5000);
  o.hung_grace = milliseconds(300);
  std::atomic<int> hung{0};
  o.on_hung = [&] { hung++; };
  auto host = StartHost(o, &exec);
  const auto t0 = std::chrono::steady_clock::now();
  head_->SendTo(PeerOf(o.actor_id), MakeTask(1, 0, 8));
  ASSERT_TRUE(WaitUntil([&] { return !Dones().empty(); }));
  const auto took = std::chrono::steady_clock::now() - t0;
  const auto d = Dones()[0];
  EXPECT_EQ(d.error_code, static_cast<int32_t>(StatusCode::kDeadlineExceeded)) << d.error_message;
  EXPECT_NE(d.error_message.find("watchdog"), std::string::npos);
  EXPECT_LT(took, milliseconds(1400));  // reported before the executor came back
  ASSERT_TRUE(WaitUntil([&] { return hung.load() == 1; }));
  // The executor returns (Cancelled) later; nothing more is reported.
  ASSERT_TRUE(WaitUntil([&] { return exec.returned.load() == 1; }));
  ASSERT_TRUE(WaitUntil([&] { return !host->busy(); }));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(Dones().size(), 1u);
}

TEST_F(ActorHostTest, RegistersAgainAfterAHeadRestartAndDeliversTheResult) {
  CountingExecutor exec;
  exec.step_ms = 30;
  auto o = Options();
  auto host = StartHost(o, &exec);
  head_->SendTo(PeerOf(o.actor_id), MakeTask(1, 0, 20));
  ASSERT_TRUE(WaitUntil([&] { return head_->All<wire::TaskProgress>().size() >= 2; }));
  head_->Restart();
  ASSERT_TRUE(WaitUntil([&] { return host->registrations() == 2; }));
  // The result of the task that ran through the restart reaches the new head.
  ASSERT_TRUE(WaitUntil([&] { return !Dones().empty(); }));
  EXPECT_EQ(Dones()[0].error_code, 0) << Dones()[0].error_message;
  EXPECT_EQ(Dones()[0].image, "img seed=42 sum=1 steps=20");
}

// Heartbeats every 10 s in these two: the restarted head learns of the actor from its task
// messages, and the result must reach it right after the actor registered again (well before
// the next heartbeat). The executor is held until the actor has reconnected to the restarted
// head, so its messages go to the new head, not into the closed connection.
TEST_F(ActorHostTest, ResultRefusedByARestartedHeadIsResentAfterRegistering) {
  head_ = std::make_unique<FakeHead>(dir_, 10'000);
  CountingExecutor exec;
  exec.step_ms = 1;
  exec.report_progress = false;  // the result is the first message the new head sees: refused
  exec.hold = true;
  auto o = Options();
  o.send_timeout = milliseconds(5000);  // a slow reconnection under load delays, never fails, the send
  auto host = StartHost(o, &exec);
  head_->SendTo(PeerOf(o.actor_id), MakeTask(1, 0, 1));
  ASSERT_TRUE(WaitUntil([&] { return exec.runs.load() == 1; }));
  head_->Restart();
  ASSERT_TRUE(WaitUntil([&] { return head_->handshakes() >= 1; }));
  exec.hold = false;
  ASSERT_TRUE(WaitUntil([&] { return Dones().size() >= 2; }, milliseconds(5000)))
      << "TaskDone messages seen: " << Dones().size();
  EXPECT_EQ(host->registrations(), 2);
  EXPECT_EQ(head_->errors_sent(), 1);
  EXPECT_EQ(Dones().size(), 2u);
  EXPECT_EQ(Dones().back().image, "img seed=42 sum=1 steps=1");
  // The result came again after the new RegisterActor.
  const auto msgs = head_->Messages();
  size_t last_register = 0, last_done = 0;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].envelope.type == wire::MessageType::kRegisterActor) last_register = i;
    if (msgs[i].envelope.type == wire::MessageType::kTaskDone) last_done = i;
  }
  EXPECT_GT(last_done, last_register);
}

TEST_F(ActorHostTest, ResultAfterARefusedProgressReachesTheRestartedHeadPromptly) {
  // Progress and result go out back to back: the head may refuse the progress before the result
  // is sent (the result then waits for the registration) or after (the result is refused and
  // resent). Either way it arrives once the actor registered again.
  head_ = std::make_unique<FakeHead>(dir_, 10'000);
  CountingExecutor exec;
  exec.step_ms = 1;
  exec.hold = true;
  auto o = Options();
  o.send_timeout = milliseconds(5000);
  auto host = StartHost(o, &exec);
  head_->SendTo(PeerOf(o.actor_id), MakeTask(1, 0, 1));
  ASSERT_TRUE(WaitUntil([&] { return exec.runs.load() == 1; }));
  head_->Restart();
  const size_t before_restart = head_->Messages().size();  // the old head's messages
  ASSERT_TRUE(WaitUntil([&] { return head_->handshakes() >= 1; }));
  exec.hold = false;
  auto delivered_after_register = [&] {
    const auto msgs = head_->Messages();
    bool registered = false;
    for (size_t i = before_restart; i < msgs.size(); ++i) {
      const auto& m = msgs[i];
      if (m.envelope.type == wire::MessageType::kRegisterActor) registered = true;
      if (const auto* d = std::get_if<wire::TaskDone>(&m.message); d && registered && d->error_code == 0) return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitUntil(delivered_after_register, milliseconds(5000)));
  EXPECT_EQ(host->registrations(), 2);
  EXPECT_GE(head_->errors_sent(), 1);
  EXPECT_LE(Dones().size(), 2u);
}

TEST_F(ActorHostTest, StopCancelsTheRunningTaskAndReportsIt) {
  CountingExecutor exec;
  exec.step_ms = 50;
  auto o = Options();
  auto host = StartHost(o, &exec);
  head_->SendTo(PeerOf(o.actor_id), MakeTask(1, 0, 1000));
  ASSERT_TRUE(WaitUntil([&] { return head_->All<wire::TaskProgress>().size() >= 2; }));
  const auto t0 = std::chrono::steady_clock::now();
  host->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(2000));
  ASSERT_TRUE(WaitUntil([&] { return !Dones().empty(); }, milliseconds(2000)));
  EXPECT_EQ(Dones()[0].error_code, static_cast<int32_t>(StatusCode::kCancelled));
  EXPECT_EQ(Dones()[0].error_message, "the actor is stopping");
}

// The connection thread sleeps until something happens. With its poll interval and the
// heartbeat interval an hour long, only the task thread's wake can send progress and results
// (at once: each task here is done within the WaitUntil's bound only if nothing waits for a
// timeout) and let Stop flush the last TaskDone and return.
TEST_F(ActorHostTest, QueuedMessagesWakeTheConnectionThread) {
  head_.reset();
  head_ = std::make_unique<FakeHead>(dir_, 3'600'000);
  CountingExecutor exec;
  exec.step_ms = 1;
  auto o = Options();
  o.poll_interval = std::chrono::hours(1);
  auto host = StartHost(o, &exec);
  for (uint32_t attempt = 0; attempt < 5; ++attempt) {
    wire::AssignTask task = MakeTask(1, 0, 3);
    task.attempt = attempt;
    ASSERT_TRUE(RunOn(o, task)) << "attempt " << attempt;
    EXPECT_EQ(Dones().back().error_code, 0) << Dones().back().error_message;
  }
  EXPECT_EQ(head_->All<wire::TaskProgress>().size(), 15u);
  EXPECT_TRUE(head_->All<wire::Heartbeat>().empty());

  // Stop while a task runs: the executor is cancelled, its TaskDone goes out, Stop returns.
  exec.hold = true;
  wire::AssignTask last = MakeTask(1, 0, 3);
  last.attempt = 5;
  head_->SendTo(PeerOf(o.actor_id), last);
  ASSERT_TRUE(WaitUntil([&] { return exec.runs.load() == 6; }));
  const auto t0 = std::chrono::steady_clock::now();
  host->Stop();
  // Milliseconds when the wake works; well under the 2 s a stopping host waits for its flush.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(1500));
  ASSERT_TRUE(WaitUntil([&] { return Dones().size() == 6; }));
  EXPECT_EQ(Dones().back().attempt, 5u);
  EXPECT_EQ(Dones().back().error_code, static_cast<int32_t>(StatusCode::kCancelled));
}

TEST_F(ActorHostTest, BadGangSetupIsReportedAsTaskDone) {
  CountingExecutor exec;
  auto o = Options();
  o.channel.connect_timeout = milliseconds(300);
  auto host = StartHost(o, &exec);
  wire::AssignTask t = MakeTask(2, 0, 3, "tcp://nohost-without-port");
  head_->SendTo(PeerOf(o.actor_id), t);
  ASSERT_TRUE(WaitUntil([&] { return !Dones().empty(); }));
  EXPECT_EQ(Dones()[0].error_code, static_cast<int32_t>(StatusCode::kInvalidArgument));
  EXPECT_NE(Dones()[0].error_message.find("nohost-without-port"), std::string::npos) << Dones()[0].error_message;
  EXPECT_EQ(exec.runs.load(), 0);
}

TEST(StepWatchdogTest, BoundsFollowTheSlowestStep) {
  using Clock = StepWatchdog::Clock;
  WatchdogOptions w;
  w.factor = 10;
  w.min_step_bound = milliseconds(1000);
  w.first_step_bound = milliseconds(5000);
  StepWatchdog dog(w);
  const auto t = Clock::now();
  EXPECT_FALSE(dog.Expired(t + std::chrono::hours(1)));  // not started
  dog.Start(t, 4);
  EXPECT_EQ(dog.Bound(), milliseconds(5000));
  EXPECT_FALSE(dog.Expired(t + milliseconds(4900)));
  EXPECT_TRUE(dog.Expired(t + milliseconds(5100)));
  dog.Step(t + milliseconds(3000), 1);  // the first step (setup) does not set the step time
  EXPECT_EQ(dog.slowest_step(), milliseconds(0));
  EXPECT_EQ(dog.Bound(), milliseconds(1000));
  dog.Step(t + milliseconds(3200), 2);  // 200 ms -> bound 2000 ms
  EXPECT_EQ(dog.slowest_step(), milliseconds(200));
  EXPECT_EQ(dog.Bound(), milliseconds(2000));
  EXPECT_FALSE(dog.Expired(t + milliseconds(5100)));
  EXPECT_TRUE(dog.Expired(t + milliseconds(5300)));
  dog.Step(t + milliseconds(3250), 3);  // faster steps keep the slowest
  EXPECT_EQ(dog.Bound(), milliseconds(2000));
  dog.Step(t + milliseconds(3300), 4);  // done: decode gets the first-step bound
  EXPECT_EQ(dog.Bound(), milliseconds(5000));
}

TEST(GangChannelTest, ParsesRendezvousAddresses) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(ParseTcpAddress("tcp://10.0.0.2:7071", &host, &port).ok());
  EXPECT_EQ(host, "10.0.0.2");
  EXPECT_EQ(port, 7071);
  ASSERT_TRUE(ParseTcpAddress("tcp://[::1]:80", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_FALSE(ParseTcpAddress("10.0.0.2:7071", &host, &port).ok());
  EXPECT_FALSE(ParseTcpAddress("tcp://host:0", &host, &port).ok());
  EXPECT_FALSE(ParseTcpAddress("tcp://host:99999", &host, &port).ok());
  EXPECT_FALSE(ParseTcpAddress("tcp://host:", &host, &port).ok());
}

}  // namespace
}  // namespace distri::worker
