// NodeTable and ActorTable: registration, heartbeats, dead detection, tasks.
#include <gtest/gtest.h>

#include "runtime/head/actor_table.h"
#include "runtime/head/node_table.h"

namespace distri::head {
namespace {

wire::RegisterActor Actor(const NodeId& node, int gpu) {
  wire::RegisterActor m;
  m.actor_id = ActorId::Random();
  m.node_id = node;
  m.gpu_index = gpu;
  m.pid = 100;
  m.model = "tiny";
  m.device = gpu < 0 ? "cpu" : "cuda:" + std::to_string(gpu);
  return m;
}

TEST(NodeTable, HeartbeatsKeepNodesAlive) {
  NodeTable t(100, 3);
  const NodeId n1 = NodeId::Random(), n2 = NodeId::Random();
  wire::NodeResources r{"h1", {{0, "gpu", 1}, {1, "gpu", 1}}, 1, {"tiny"}};
  t.Register(n1, r, "0.1", "peer1", 0);
  r.hostname = "h2";
  t.Register(n2, r, "0.1", "peer2", 0);
  EXPECT_EQ(t.AliveCapacity(), 6u);
  EXPECT_TRUE(t.AnyAliveNodeLists("tiny"));
  EXPECT_FALSE(t.AnyAliveNodeLists("sdxl"));
  EXPECT_EQ(t.Heartbeat("peer1", 250), n1);
  EXPECT_FALSE(t.Heartbeat("nobody", 250).has_value());
  EXPECT_TRUE(t.Sweep(300).empty());
  EXPECT_EQ(t.Sweep(301), std::vector<NodeId>{n2});  // silent for > 3 intervals
  EXPECT_FALSE(t.Find(n2)->alive);
  EXPECT_EQ(t.AliveCapacity(), 3u);
  EXPECT_FALSE(t.Heartbeat("peer2", 302).has_value());  // dead until it registers again
  EXPECT_EQ(t.Find(n2)->wire_minor, wire::kProtocolVersionMinor);
  t.Register(n2, r, "0.1", "peer3", 400, /*wire_minor=*/3);  // an agent of protocol 1.3 now
  EXPECT_EQ(t.Find(n2)->wire_minor, 3);
  EXPECT_TRUE(t.Find(n2)->alive);
  EXPECT_EQ(t.FindByPeer("peer3")->id, n2);
}

TEST(ActorTable, DeadActorsReportTheirTask) {
  ActorTable t(100, 3);
  const NodeId node = NodeId::Random();
  wire::RegisterActor a = Actor(node, 0), b = Actor(node, 1);
  EXPECT_FALSE(t.Register(a, "pa", 0).has_value());
  EXPECT_FALSE(t.Register(b, "pb", 0).has_value());
  const TaskRef task{JobId::Random(), 2, 1};
  t.Assign(b.actor_id, task);
  EXPECT_EQ(t.Find(b.actor_id)->state, wire::ActorState::kBusy);
  EXPECT_EQ(t.CountInState(wire::ActorState::kBusy, true), 1u);
  EXPECT_EQ(t.Touch("pa", 200), a.actor_id);
  auto died = t.Sweep(350);
  ASSERT_EQ(died.size(), 1u);
  EXPECT_EQ(died[0].first, b.actor_id);
  EXPECT_EQ(died[0].second, task);
  EXPECT_EQ(t.Find(b.actor_id)->state, wire::ActorState::kDead);
  EXPECT_EQ(t.CountAlive("tiny"), 1u);
  EXPECT_EQ(t.CountAlive("other"), 0u);
  // Restarted by its node: idle again.
  EXPECT_FALSE(t.Register(b, "pb2", 400).has_value());
  EXPECT_EQ(t.Find(b.actor_id)->state, wire::ActorState::kIdle);
}

TEST(ActorTable, ReleaseOnlyForTheCurrentTask) {
  ActorTable t(100, 3);
  wire::RegisterActor a = Actor(NodeId::Random(), -1);
  t.Register(a, "pa", 0);
  const TaskRef task{JobId::Random(), 0, 0};
  t.Assign(a.actor_id, task);
  EXPECT_FALSE(t.Release(a.actor_id, {task.job_id, 1, 0}, true));  // stale attempt
  EXPECT_TRUE(t.Release(a.actor_id, task, true));
  EXPECT_EQ(t.Find(a.actor_id)->state, wire::ActorState::kIdle);
  // Re-registering while busy loses the task, which the head must re-run.
  t.Assign(a.actor_id, task);
  EXPECT_EQ(t.Register(a, "pa2", 10), task);
}

// docs/runtime-design.md, "Kept gangs": kept only after a successful TaskDone of a gang of >= 2,
// cleared by anything else.
TEST(ActorTable, KeepsTheGangOfASucceededGangTaskOnly) {
  ActorTable t(100, 3);
  wire::RegisterActor a = Actor(NodeId::Random(), 0), b = Actor(NodeId::Random(), 1);
  t.Register(a, "pa", 0);
  t.Register(b, "pb", 0);
  const GangRecord gang{GangId::Random(), {a.actor_id, b.actor_id}, "ucx"};
  auto kept = [&](const ActorId& id) { return t.Find(id)->kept_gang; };
  TaskRef task{JobId::Random(), 0, 0};
  // Success of a gang of two: kept.
  t.Assign(a.actor_id, task, gang);
  EXPECT_FALSE(kept(a.actor_id).has_value());
  EXPECT_FALSE(t.Release(a.actor_id, {task.job_id, 1, 0}, true));  // stale: nothing changes
  EXPECT_TRUE(t.Release(a.actor_id, task, true));
  ASSERT_TRUE(kept(a.actor_id).has_value());
  EXPECT_EQ(*kept(a.actor_id), gang);
  // Any other assignment clears it (even of the same gang, until that task succeeds).
  task = {JobId::Random(), 0, 0};
  t.Assign(a.actor_id, task, gang);
  EXPECT_FALSE(kept(a.actor_id).has_value());
  EXPECT_TRUE(t.Release(a.actor_id, task, true));
  EXPECT_TRUE(kept(a.actor_id).has_value());
  // A failure clears it.
  task = {JobId::Random(), 0, 0};
  t.Assign(a.actor_id, task, gang);
  EXPECT_TRUE(t.Release(a.actor_id, task, /*succeeded=*/false));
  EXPECT_FALSE(kept(a.actor_id).has_value());
  // A gang of one keeps nothing, nor does a task of unknown gang (assigned without one).
  task = {JobId::Random(), 0, 0};
  t.Assign(a.actor_id, task, GangRecord{GangId::Random(), {a.actor_id}, "ucx"});
  EXPECT_TRUE(t.Release(a.actor_id, task, true));
  EXPECT_FALSE(kept(a.actor_id).has_value());
  t.Assign(a.actor_id, task);
  EXPECT_TRUE(t.Release(a.actor_id, task, true));
  EXPECT_FALSE(kept(a.actor_id).has_value());
  // A CancelTask sent for the task: not kept even when its TaskDone is OK (the actor may have
  // aborted its channels).
  task = {JobId::Random(), 0, 0};
  t.Assign(a.actor_id, task, gang);
  t.CancelSent(a.actor_id, task, 5);
  EXPECT_TRUE(t.Release(a.actor_id, task, true));
  EXPECT_FALSE(kept(a.actor_id).has_value());
  // An expired cancel, re-registration and death clear it.
  auto keep = [&](const ActorId& id) {
    const TaskRef k{JobId::Random(), 0, 0};
    GangRecord fresh = gang;  // a broken gang is never kept again
    fresh.gang_id = GangId::Random();
    t.Assign(id, k, fresh);
    ASSERT_TRUE(t.Release(id, k, true));
    ASSERT_TRUE(kept(id).has_value());
  };
  keep(a.actor_id);
  t.Register(a, "pa2", 10);
  EXPECT_FALSE(kept(a.actor_id).has_value());
  keep(b.actor_id);
  t.MarkDead(b.actor_id);
  EXPECT_FALSE(kept(b.actor_id).has_value());
  t.Register(b, "pb2", 20);
  keep(b.actor_id);
  task = {JobId::Random(), 0, 0};
  t.Assign(b.actor_id, task, gang);
  t.CancelSent(b.actor_id, task, 30);
  ASSERT_EQ(t.ExpireCancels(1000, 100).size(), 1u);
  EXPECT_FALSE(kept(b.actor_id).has_value());
  // An actor of a minor version before kept gangs keeps none: its build destroys its channels
  // after every task.
  t.Register(b, "pb3", 40, kKeptGangsMinor - 1);
  EXPECT_EQ(t.Find(b.actor_id)->wire_minor, kKeptGangsMinor - 1);
  task = {JobId::Random(), 0, 1};
  GangRecord fresh = gang;
  fresh.gang_id = GangId::Random();
  t.Assign(b.actor_id, task, fresh);
  EXPECT_TRUE(t.Release(b.actor_id, task, true));
  EXPECT_FALSE(kept(b.actor_id).has_value());
  t.Register(b, "pb4", 50);  // restarted on this build
  keep(b.actor_id);
}

// Breaking a kept gang clears it on every member, records it once for ReleaseGang, and a
// member whose TaskDone for it comes after the break does not keep it.
TEST(ActorTable, BreakingAKeptGangClearsItEverywhereAndRecordsIt) {
  ActorTable t(100, 3);
  wire::RegisterActor a{ActorId::Random(), NodeId::Random(), 0, 1, "m", "cuda:0"};
  wire::RegisterActor b{ActorId::Random(), NodeId::Random(), 1, 2, "m", "cuda:1"};
  t.Register(a, "pa", 0);
  t.Register(b, "pb", 0);
  const GangRecord gang{GangId::Random(), {a.actor_id, b.actor_id}, "nccl"};
  TaskRef ta{JobId::Random(), 0, 0}, tb{ta.job_id, 0, 1};
  t.Assign(a.actor_id, ta, gang);
  t.Assign(b.actor_id, tb, gang);
  ASSERT_TRUE(t.Release(a.actor_id, ta, true));
  ASSERT_TRUE(t.Release(b.actor_id, tb, true));
  EXPECT_TRUE(t.TakeBrokenGangs().empty());
  // Reusing it breaks nothing.
  ta.attempt = tb.attempt = 1;
  t.Assign(a.actor_id, ta, gang);
  t.Assign(b.actor_id, tb, gang);
  EXPECT_TRUE(t.TakeBrokenGangs().empty());
  ASSERT_TRUE(t.Release(a.actor_id, ta, true));
  // a gets another task while b still runs the gang's task: broken, recorded once.
  const TaskRef other{JobId::Random(), 0, 0};
  t.Assign(a.actor_id, other, GangRecord{GangId::Random(), {a.actor_id}, "nccl"});
  auto broken = t.TakeBrokenGangs();
  ASSERT_EQ(broken.size(), 1u);
  EXPECT_EQ(broken[0], gang);
  EXPECT_TRUE(t.TakeBrokenGangs().empty());
  // b's late success does not keep the released gang.
  ASSERT_TRUE(t.Release(b.actor_id, tb, true));
  EXPECT_FALSE(t.Find(b.actor_id)->kept_gang.has_value());
  // Both keep a new gang; b's death breaks it and clears it on a too.
  const GangRecord g2{GangId::Random(), {a.actor_id, b.actor_id}, "nccl"};
  ASSERT_TRUE(t.Release(a.actor_id, other, true));
  const TaskRef n0{JobId::Random(), 0, 0}, n1{n0.job_id, 0, 1};
  t.Assign(a.actor_id, n0, g2);
  t.Assign(b.actor_id, n1, g2);
  ASSERT_TRUE(t.Release(a.actor_id, n0, true));
  ASSERT_TRUE(t.Release(b.actor_id, n1, true));
  ASSERT_TRUE(t.Find(a.actor_id)->kept_gang.has_value());
  t.MarkDead(b.actor_id);
  EXPECT_FALSE(t.Find(a.actor_id)->kept_gang.has_value());
  broken = t.TakeBrokenGangs();
  ASSERT_EQ(broken.size(), 1u);
  EXPECT_EQ(broken[0].gang_id, g2.gang_id);
}

TEST(ActorTable, AMemberDyingBeforeItsTaskDoneBreaksTheGangTheOthersKept) {
  ActorTable t(100, 3);
  const wire::RegisterActor a = Actor(NodeId::Random(), 0), b = Actor(NodeId::Random(), 1);
  t.Register(a, "pa", 0);
  t.Register(b, "pb", 0);
  const GangRecord gang{GangId::Random(), {a.actor_id, b.actor_id}, "nccl"};
  const TaskRef ta{JobId::Random(), 0, 0}, tb{ta.job_id, 0, 1};
  t.Assign(a.actor_id, ta, gang);
  t.Assign(b.actor_id, tb, gang);
  ASSERT_TRUE(t.Release(a.actor_id, ta, true));  // rank 0 done: a keeps the gang
  ASSERT_TRUE(t.Find(a.actor_id)->kept_gang.has_value());
  EXPECT_EQ(t.MarkDead(b.actor_id), tb);  // b dies still running its rank
  EXPECT_FALSE(t.Find(a.actor_id)->kept_gang.has_value());
  auto broken = t.TakeBrokenGangs();
  ASSERT_EQ(broken.size(), 1u);
  EXPECT_EQ(broken[0], gang);
  // A gang without the dead actor is left alone.
  const wire::RegisterActor c = Actor(NodeId::Random(), 2);
  t.Register(c, "pc", 0);
  const GangRecord ac{GangId::Random(), {a.actor_id, c.actor_id}, "nccl"};
  const TaskRef u0{JobId::Random(), 0, 0}, u1{u0.job_id, 0, 1};
  t.Assign(a.actor_id, u0, ac);
  t.Assign(c.actor_id, u1, ac);
  ASSERT_TRUE(t.Release(a.actor_id, u0, true));
  ASSERT_TRUE(t.Release(c.actor_id, u1, true));
  t.MarkDead(b.actor_id);  // already dead: nothing changes
  EXPECT_TRUE(t.Find(a.actor_id)->kept_gang.has_value());
  EXPECT_TRUE(t.TakeBrokenGangs().empty());
}

TEST(ActorTable, UnansweredCancelTaskExpires) {
  ActorTable t(100, 3);
  wire::RegisterActor a = Actor(NodeId::Random(), 0), b = Actor(NodeId::Random(), 1);
  t.Register(a, "pa", 0);
  t.Register(b, "pb", 0);
  const TaskRef ta{JobId::Random(), 0, 0}, tb{JobId::Random(), 1, 0};
  t.Assign(a.actor_id, ta);
  t.Assign(b.actor_id, tb);
  t.CancelSent(a.actor_id, {ta.job_id, 5, 0}, 10);  // not its task: ignored
  EXPECT_TRUE(t.ExpireCancels(10'000, 100).empty());
  t.CancelSent(a.actor_id, ta, 100);
  t.CancelSent(a.actor_id, ta, 150);  // a repeated cancel keeps the first time
  EXPECT_TRUE(t.ExpireCancels(200, 100).empty());
  auto released = t.ExpireCancels(201, 100);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].first, a.actor_id);
  EXPECT_EQ(released[0].second, ta);
  EXPECT_EQ(t.Find(a.actor_id)->state, wire::ActorState::kIdle);
  EXPECT_EQ(t.Find(b.actor_id)->state, wire::ActorState::kBusy);  // never cancelled: busy as long as it runs
  // An answered cancel (TaskDone) or a new task clears the clock.
  t.Assign(a.actor_id, ta);
  t.CancelSent(a.actor_id, ta, 300);
  t.Assign(a.actor_id, tb);
  EXPECT_TRUE(t.ExpireCancels(10'000, 100).empty());
  t.CancelSent(a.actor_id, tb, 400);
  EXPECT_TRUE(t.Release(a.actor_id, tb, true));
  EXPECT_TRUE(t.ExpireCancels(10'000, 100).empty());
  // A dead actor is not released.
  t.CancelSent(b.actor_id, tb, 0);
  t.MarkDead(b.actor_id);
  EXPECT_TRUE(t.ExpireCancels(10'000, 100).empty());
}

TEST(ActorTable, NodeDeathKillsItsActors) {
  ActorTable t(100, 3);
  const NodeId n1 = NodeId::Random(), n2 = NodeId::Random();
  wire::RegisterActor a = Actor(n1, 0), b = Actor(n1, 1), c = Actor(n2, 0);
  t.Register(a, "pa", 0);
  t.Register(b, "pb", 0);
  t.Register(c, "pc", 0);
  const TaskRef task{JobId::Random(), 0, 0};
  t.Assign(a.actor_id, task);
  auto died = t.MarkNodeDead(n1);
  EXPECT_EQ(died.size(), 2u);
  EXPECT_EQ(t.CountAlive(""), 1u);
  EXPECT_FALSE(t.MarkDead(a.actor_id).has_value());  // already dead
}

}  // namespace
}  // namespace distri::head
