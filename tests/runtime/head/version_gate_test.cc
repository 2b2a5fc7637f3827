// Protocol versions in placement: GangScheduler counts only actors new enough for a job's
// fields; TooOldForJob decides when a job can never run (runtime/head/version_gate.h).
#include "runtime/head/version_gate.h"

#include <gtest/gtest.h>

#include "runtime/head/gang_scheduler.h"
#include "tests/runtime/head/scheduler_slots.h"

namespace distri::head {
namespace {

using testing::Node;
using testing::SlotOfMinor;
using testing::Spec;

wire::JobSpec Rescaled(uint32_t gpus, std::string model = "") {
  wire::JobSpec s = Spec(gpus, 1024, std::move(model));
  s.guidance_rescale = 0.7;
  return s;
}

TEST(GangSchedulerVersions, PlacesAJobOnlyOnActorsThatKnowItsFields) {
  GangScheduler s;
  // Node 1: two actors of 1.3; node 2: one of 1.3, one of 1.4.
  std::vector<ActorSlot> actors = {SlotOfMinor(1, 0, 3), SlotOfMinor(1, 1, 3), SlotOfMinor(2, 0, 3), SlotOfMinor(2, 1, 4)};
  // Without newer fields: anyone (best fit: node 2).
  std::optional<Placement> p = s.Place(Spec(2), actors, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->gang.size(), 2u);
  // guidance_rescale (1.4): only the one actor of 1.4, whatever the strategy prefers.
  p = s.Place(Rescaled(1), actors, 0);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->gang.size(), 1u);
  EXPECT_EQ(p->gang[0].actor_id, actors[3].actor_id);
  // Two ranks of 1.4 do not exist: it never fits now, and could never be held.
  EXPECT_FALSE(s.Place(Rescaled(2), actors, 0));
  EXPECT_FALSE(s.Feasible(Rescaled(2), actors));
  EXPECT_TRUE(s.Feasible(Rescaled(1), actors));
  // The auto size counts only new-enough actors: an idle cluster of 4 gives 1024 px two ranks,
  // but only one actor knows guidance_rescale.
  p = s.Place(Rescaled(0), actors, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->gang.size(), 1u);
  p = s.Place(Spec(0), actors, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->gang.size(), 2u);
  // Busy: the job waits for it (Place fails, Feasible holds), the idle old ones do not count.
  actors[3].idle = false;
  EXPECT_FALSE(s.Place(Rescaled(1), actors, 0));
  EXPECT_TRUE(s.Feasible(Rescaled(1), actors));
}

TEST(GangSchedulerVersions, EachVersionedFieldNeedsItsVersion) {
  GangScheduler s;
  std::vector<ActorSlot> minor1 = {SlotOfMinor(1, 0, 1)};
  std::vector<ActorSlot> minor2 = {SlotOfMinor(1, 0, 2)};
  wire::JobSpec sync = Spec(1);
  sync.sync_mode = "stale_gn";
  wire::JobSpec warmup = Spec(1);
  warmup.warmup_steps = 0;  // set (even to 0): the actor must know it
  wire::JobSpec preview = Spec(1);
  preview.preview_every = 2;
  for (const wire::JobSpec& spec : {sync, warmup}) {
    EXPECT_FALSE(s.Place(spec, minor1, 0));
    EXPECT_TRUE(s.Place(spec, minor2, 0));
  }
  EXPECT_FALSE(s.Place(preview, minor2, 0));
  EXPECT_TRUE(s.Place(preview, {SlotOfMinor(1, 0, 3)}, 0));
  EXPECT_TRUE(s.Place(Spec(1), minor1, 0));
}

TEST(HeadVersionGate, FailsOnlyWhenEveryAliveActorOfTheModelIsTooOld) {
  const std::vector<const NodeEntry*> no_nodes;
  // No versioned field: never.
  EXPECT_FALSE(TooOldForJob(Spec(1), {SlotOfMinor(1, 0, 0)}, no_nodes));
  // Every actor too old: the reason names the field, the version it needs and theirs.
  std::optional<std::string> why = TooOldForJob(Rescaled(1), {SlotOfMinor(1, 0, 3), SlotOfMinor(1, 1, 2)}, no_nodes);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why,
            "guidance_rescale (since 1.4) is unknown to every alive actor (protocol 1.2, 1.3): an older actor would "
            "drop it and render another image; upgrade the actors (distri-worker) to protocol 1.4 or later");
  // One new-enough actor (busy or not): the job waits for it.
  EXPECT_FALSE(TooOldForJob(Rescaled(1), {SlotOfMinor(1, 0, 3), SlotOfMinor(1, 1, 4, "sdxl", false)}, no_nodes));
  // Of the job's model only: a new actor of another model does not help it.
  why = TooOldForJob(Rescaled(1, "sdxl"), {SlotOfMinor(1, 0, 3, "sdxl"), SlotOfMinor(1, 1, 5, "sd15")}, no_nodes);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("of model 'sdxl' (protocol 1.3)"), std::string::npos) << *why;
  // No actor of the model at all: not a version matter (the job waits, or the model is refused).
  EXPECT_FALSE(TooOldForJob(Rescaled(1, "sd15"), {SlotOfMinor(1, 0, 3, "sdxl")}, no_nodes));
  EXPECT_FALSE(TooOldForJob(Rescaled(1), {}, no_nodes));
}

TEST(HeadVersionGate, ANewEnoughNodeWithFreeSlotsMayStillBringAnActor) {
  NodeEntry node;
  node.id = Node(2);
  node.resources.hostname = "host2";
  node.resources.cpu_actors = 2;
  node.wire_minor = 5;
  const std::vector<ActorSlot> old_actors = {SlotOfMinor(1, 0, 3), SlotOfMinor(2, -1, 3)};
  // Node 2 runs one old actor of its two slots: the other one may come, and be of 1.5.
  EXPECT_FALSE(TooOldForJob(Rescaled(1), old_actors, {&node}));
  // Both slots taken by old actors: nothing more will come from it.
  std::vector<ActorSlot> full = old_actors;
  ActorSlot second = SlotOfMinor(2, -1, 3);
  second.actor_id = ActorId::Random();
  full.push_back(second);
  EXPECT_TRUE(TooOldForJob(Rescaled(1), full, {&node}));
  // A node too old itself, dead, or listing only other models does not count.
  node.wire_minor = 3;
  EXPECT_TRUE(TooOldForJob(Rescaled(1), old_actors, {&node}));
  node.wire_minor = 5;
  node.alive = false;
  EXPECT_TRUE(TooOldForJob(Rescaled(1), old_actors, {&node}));
  node.alive = true;
  node.resources.models = {"sd15"};
  EXPECT_TRUE(TooOldForJob(Rescaled(1, "sdxl"), old_actors, {&node}));
  node.resources.models = {"sdxl"};
  EXPECT_FALSE(TooOldForJob(Rescaled(1, "sdxl"), old_actors, {&node}));
}

}  // namespace
}  // namespace distri::head
