// GangScheduler: PACK, SPREAD, model filtering, the auto rule, channel backends, kept gangs.
#include "runtime/head/gang_scheduler.h"

#include <gtest/gtest.h>

#include "tests/runtime/head/scheduler_slots.h"

namespace distri::head {
namespace {

using testing::Node;
using testing::Slot;
using testing::Spec;

// Marks `members` (in rank order) as keeping one gang, over the backend they would get.
GangRecord Keep(std::vector<ActorSlot*> members) {
  GangRecord g{GangId::Random(), {}, ""};
  std::vector<ActorSlot> gang;
  for (ActorSlot* m : members) {
    g.members.push_back(m->actor_id);
    gang.push_back(*m);
  }
  g.channel_backend = ChannelBackendFor(gang);
  for (ActorSlot* m : members) m->kept = g;
  return g;
}

TEST(GangScheduler, PackPrefersTheTightestNode) {
  GangScheduler s;
  // Node 1: 4 idle GPUs; node 2: 2 idle GPUs. A gang of 2 goes to node 2 (best fit).
  std::vector<ActorSlot> actors = {Slot(1, 0), Slot(1, 1), Slot(1, 2), Slot(1, 3), Slot(2, 1), Slot(2, 0)};
  std::optional<Placement> p = s.Place(Spec(2), actors, 0);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->gang.size(), 2u);
  EXPECT_EQ(p->gang[0].node_id, Node(2));
  EXPECT_EQ(p->gang[0].gpu_index, 0);  // ranks in GPU order
  EXPECT_EQ(p->gang[1].gpu_index, 1);
  EXPECT_EQ(p->channel_backend, "nccl");
  // A gang of 4 fits only on node 1.
  p = s.Place(Spec(4), actors, 0);
  ASSERT_TRUE(p);
  for (const ActorSlot& a : p->gang) EXPECT_EQ(a.node_id, Node(1));
}

TEST(GangScheduler, PackSpreadsWhenNoNodeFits) {
  GangScheduler s;
  std::vector<ActorSlot> actors = {Slot(1, 0), Slot(1, 1), Slot(1, 2, false), Slot(2, 0), Slot(2, 1), Slot(3, 0)};
  std::optional<Placement> p = s.Place(Spec(4), actors, 0);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->gang.size(), 4u);
  EXPECT_EQ(p->channel_backend, "ucx");
  // Fullest nodes first: nodes 1 and 2, two each; ranks of one node adjacent.
  EXPECT_EQ(p->gang[0].node_id, Node(1));
  EXPECT_EQ(p->gang[1].node_id, Node(1));
  EXPECT_EQ(p->gang[2].node_id, Node(2));
  EXPECT_EQ(p->gang[3].node_id, Node(2));
  EXPECT_FALSE(s.Place(Spec(6), actors, 0));  // only 5 idle
  EXPECT_TRUE(s.Feasible(Spec(6), actors));   // 6 alive: it waits
  EXPECT_FALSE(s.Feasible(Spec(7), actors));
}

TEST(GangScheduler, SpreadTakesOnePerNodeInTurn) {
  GangScheduler s({.strategy = PlacementStrategy::kSpread});
  std::vector<ActorSlot> actors = {Slot(1, 0), Slot(1, 1), Slot(1, 2), Slot(2, 0), Slot(2, 1)};
  std::optional<Placement> p = s.Place(Spec(2), actors, 0);
  ASSERT_TRUE(p);
  EXPECT_NE(p->gang[0].node_id, p->gang[1].node_id);
  EXPECT_EQ(p->channel_backend, "ucx");
  p = s.Place(Spec(5), actors, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->gang.size(), 5u);
}

TEST(GangScheduler, OnlyActorsWithTheModel) {
  GangScheduler s;
  std::vector<ActorSlot> actors = {Slot(1, 0, true, "sd15"), Slot(1, 1, true, "sdxl"), Slot(1, 2, true, "sdxl")};
  std::optional<Placement> p = s.Place(Spec(2, 1024, "sdxl"), actors, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->model, "sdxl");
  for (const ActorSlot& a : p->gang) EXPECT_EQ(a.model, "sdxl");
  EXPECT_FALSE(s.Place(Spec(2, 1024, "sd15"), actors, 0));
  EXPECT_FALSE(s.Feasible(Spec(1, 1024, "flux"), actors));
  // "" = any one model: the one with the most idle actors; never a mixed gang.
  p = s.Place(Spec(2), actors, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->model, "sdxl");
  EXPECT_FALSE(s.Place(Spec(3), actors, 0));
}

TEST(GangScheduler, AutoRuleByResolutionAndQueue) {
  GangScheduler s;
  // Empty queue, 8 actors: the resolution decides.
  EXPECT_EQ(s.AutoGangSize(512, 512, 0, 8), 1u);
  EXPECT_EQ(s.AutoGangSize(768, 768, 0, 8), 1u);
  EXPECT_EQ(s.AutoGangSize(1024, 1024, 0, 8), 2u);
  EXPECT_EQ(s.AutoGangSize(1536, 1536, 0, 8), 4u);
  EXPECT_EQ(s.AutoGangSize(2048, 2048, 0, 8), 8u);
  // Capped by the actors there are, rounded down to a power of two.
  EXPECT_EQ(s.AutoGangSize(2048, 2048, 0, 6), 4u);
  EXPECT_EQ(s.AutoGangSize(2048, 2048, 0, 0), 1u);
  // A queue shares the actors: 3 jobs behind this one on 8 actors -> 2 each.
  EXPECT_EQ(s.AutoGangSize(2048, 2048, 3, 8), 2u);
  // A long queue: one image per actor.
  EXPECT_EQ(s.AutoGangSize(2048, 2048, 20, 8), 1u);
  // Explicit gpus win.
  EXPECT_EQ(s.GangSize(Spec(3, 512), 20, 8), 3u);
  // Through Place: an auto job on 4 idle actors of one node at 1536 px takes all 4.
  std::vector<ActorSlot> actors = {Slot(1, 0), Slot(1, 1), Slot(1, 2), Slot(1, 3)};
  EXPECT_EQ(s.Place(Spec(0, 1536), actors, 0)->gang.size(), 4u);
  EXPECT_EQ(s.Place(Spec(0, 1536), actors, 10)->gang.size(), 1u);
}

TEST(GangScheduler, ReusesAGangOnlyWhenEveryMemberKeepsItInTheSameOrder) {
  ActorSlot a = Slot(1, 0), b = Slot(1, 1), c = Slot(1, 2);
  const GangRecord g = Keep({&a, &b});
  EXPECT_EQ(KeptGangOf({a, b}, "nccl"), g.gang_id);
  EXPECT_FALSE(KeptGangOf({b, a}, "nccl"));     // another rank order
  EXPECT_FALSE(KeptGangOf({a, b}, "ucx"));      // another backend
  EXPECT_FALSE(KeptGangOf({a}, "nccl"));        // a gang of one
  EXPECT_FALSE(KeptGangOf({a, b, c}, "nccl"));  // another size (c keeps nothing)
  ActorSlot b2 = b;
  b2.kept.reset();
  EXPECT_FALSE(KeptGangOf({a, b2}, "nccl"));  // one member dropped it
  ActorSlot b3 = b;
  b3.kept = GangRecord{GangId::Random(), {a.actor_id, b.actor_id}, "nccl"};
  EXPECT_FALSE(KeptGangOf({a, b3}, "nccl"));  // one member keeps another gang

  // Through Place: the kept gang, in its rank order, with its id.
  GangScheduler s;
  std::optional<Placement> p = s.Place(Spec(2), {a, b}, 0);
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->kept_gang);
  EXPECT_EQ(*p->kept_gang, g.gang_id);
  EXPECT_EQ(p->gang[0].actor_id, a.actor_id);
  EXPECT_EQ(p->gang[1].actor_id, b.actor_id);
  // A kept gang in the other rank order is reused in that order.
  ActorSlot x = Slot(2, 0), y = Slot(2, 1);
  const GangRecord h = Keep({&y, &x});
  p = s.Place(Spec(2), {x, y}, 0);
  ASSERT_TRUE(p && p->kept_gang);
  EXPECT_EQ(*p->kept_gang, h.gang_id);
  EXPECT_EQ(p->gang[0].actor_id, y.actor_id);
  // A busy member: a new gang (no id to reuse); a gang of another size: a new gang.
  ActorSlot busy_b = b;
  busy_b.idle = false;
  p = s.Place(Spec(2), {a, busy_b, c}, 0);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->kept_gang);
  p = s.Place(Spec(3), {a, b, c}, 0);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->kept_gang);
  // A job of one on a member of a kept gang: no gang to reuse.
  p = s.Place(Spec(1), {a, b}, 0);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->kept_gang);
}

TEST(GangScheduler, PrefersAnIdleKeptGangWithinTheStrategy) {
  GangScheduler pack;
  // Node 1: 4 idle GPUs; node 2: 2. Best fit would put a gang of 2 on node 2; the gang kept
  // on node 1 wins (same number of nodes).
  std::vector<ActorSlot> actors = {Slot(1, 0), Slot(1, 1), Slot(1, 2), Slot(1, 3), Slot(2, 0), Slot(2, 1)};
  const GangRecord g = Keep({&actors[2], &actors[3]});
  std::optional<Placement> p = pack.Place(Spec(2), actors, 0);
  ASSERT_TRUE(p && p->kept_gang);
  EXPECT_EQ(*p->kept_gang, g.gang_id);
  EXPECT_EQ(p->gang[0].actor_id, actors[2].actor_id);
  EXPECT_EQ(p->gang[1].actor_id, actors[3].actor_id);
  // PACK still holds: a kept gang across two nodes loses to a gang on one node.
  std::vector<ActorSlot> split = {Slot(1, 0), Slot(1, 1), Slot(2, 0)};
  Keep({&split[0], &split[2]});
  p = pack.Place(Spec(2), split, 0);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->kept_gang);
  EXPECT_EQ(p->gang[0].node_id, p->gang[1].node_id);
  // SPREAD: a kept gang on one node loses to one spread over two; a spread kept gang wins.
  GangScheduler spread({.strategy = PlacementStrategy::kSpread});
  std::vector<ActorSlot> s1 = {Slot(1, 0), Slot(1, 1), Slot(2, 0), Slot(2, 1)};
  Keep({&s1[0], &s1[1]});
  p = spread.Place(Spec(2), s1, 0);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->kept_gang);
  EXPECT_NE(p->gang[0].node_id, p->gang[1].node_id);
  const GangRecord across = Keep({&s1[1], &s1[3]});
  p = spread.Place(Spec(2), s1, 0);
  ASSERT_TRUE(p && p->kept_gang);
  EXPECT_EQ(*p->kept_gang, across.gang_id);
}

TEST(GangScheduler, ChannelBackend) {
  EXPECT_EQ(ChannelBackendFor({Slot(1, 0), Slot(1, 1)}), "nccl");
  EXPECT_EQ(ChannelBackendFor({Slot(1, 0), Slot(2, 0)}), "ucx");
  EXPECT_EQ(ChannelBackendFor({Slot(1, -1)}), "ucx");
}

}  // namespace
}  // namespace distri::head
