// GangScheduler: picks the gang of actors for one job. Pure: it reads a snapshot of the
// actors and decides; the head applies the decision.
//
// Gang size (JobSpec.gpus; 0 = "auto", AutoGangSize):
//   1. By resolution: the image's side s = sqrt(width * height) wants 1 actor up to
//      auto_one_max_side (768), 2 up to auto_two_max_side (1024), 4 up to auto_four_max_side
//      (1536), and 8 above: DistriFusion only pays off once each patch still has enough rows.
//   2. By load: with q other unfinished jobs (queued behind this one, or already placed and
//      holding actors: the head passes both) and A alive actors of the model, the size is capped
//      at max(1, A / (q + 1)): a long queue of small jobs runs one image per actor (throughput,
//      to the last job of a batch), an idle cluster gives an image the gang its size wants
//      (latency).
//   3. Capped at the alive actors of the model, then rounded down to a power of two.
//   An explicit gpus=N is used as is (the job waits until N actors of its model are idle).
//
// Placement (only idle actors holding the job's model; "" = any one model, the one with the
// most idle actors): PACK (default) puts the whole gang on one node, the node with the fewest
// idle actors that still fit it (best fit keeps big holes for big gangs); when no single node
// can hold it, the gang spreads over the nodes with the most idle actors first. SPREAD takes
// one actor per node in turn (round-robin over nodes, most idle first). Ranks are ordered by
// node, then GPU index, so ranks of one node are adjacent.
//
// Kept gangs (docs/runtime-design.md, "Kept gangs"): an idle actor may keep the channels of its
// last gang (ActorSlot::kept). When the idle actors include a whole kept gang of the wanted
// size (every member idle and keeping the same gang, in the same rank order, the channel
// backend unchanged), that gang is preferred over the placement above, provided it is no
// worse for the strategy: for PACK it spans no more nodes than the placement above, for
// SPREAD no fewer (so the best-fit node may lose to a kept gang, a single-node gang never to a
// two-node one). Ties go to the lowest gang id. Whenever the chosen gang is exactly a kept
// gang, Placement::kept_gang names it: the head reuses its id (no rendezvous).
//
// Channel backend: "nccl" when every rank is a GPU actor on one node, "ucx" otherwise
// (docs/runtime-design.md).
//
// Protocol versions (docs/runtime-design.md, "Peers of older minor versions"): an actor whose
// protocol minor version (ActorSlot::wire_minor) is older than a JobSpec field the job uses
// (wire::MinorVersionNeeded) would drop that field and render another image, so Place,
// Feasible and the auto gang size only count actors new enough for the job: for them, an
// older actor does not exist. (When every alive actor of the model is too old the head fails
// the job: runtime/head/version_gate.h.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/ids.h"
#include "runtime/head/gang_record.h"
#include "runtime/wire/message_type.h"
#include "runtime/wire/types.h"

namespace distri::head {

enum class PlacementStrategy { kPack, kSpread };

struct SchedulerOptions {
  PlacementStrategy strategy = PlacementStrategy::kPack;
  uint32_t auto_one_max_side = 768;
  uint32_t auto_two_max_side = 1024;
  uint32_t auto_four_max_side = 1536;
  uint32_t auto_max_gang = 8;
};

// One actor as the scheduler sees it.
struct ActorSlot {
  ActorId actor_id;
  NodeId node_id;
  int32_t gpu_index = -1;  // -1 = CPU actor
  std::string hostname;
  std::string model;
  bool idle = false;       // alive and without a task (dead actors are not passed in)
  std::optional<GangRecord> kept;  // idle: the gang whose channels it keeps (ActorTable)
  uint8_t wire_minor = wire::kProtocolVersionMinor;  // its protocol minor version (ActorEntry)
};

struct Placement {
  std::vector<ActorSlot> gang;  // in rank order
  std::string model;            // the model every rank holds
  std::string channel_backend;  // "nccl" or "ucx"
  std::optional<GangId> kept_gang;  // every rank keeps this gang, in this order: reuse its id
};

class GangScheduler {
 public:
  explicit GangScheduler(SchedulerOptions options = {}) : options_(options) {}

  // The gang size for `spec` given the queue and the alive actors of its model (see above).
  uint32_t GangSize(const wire::JobSpec& spec, size_t jobs_waiting_behind, size_t alive_actors) const;
  uint32_t AutoGangSize(uint32_t width, uint32_t height, size_t jobs_waiting_behind, size_t alive_actors) const;

  // A gang for `spec` among `actors` (alive ones), or nullopt when not enough idle actors of
  // a model, new enough for the fields `spec` uses, fit now. `jobs_waiting_behind` feeds the
  // auto rule.
  std::optional<Placement> Place(const wire::JobSpec& spec, const std::vector<ActorSlot>& actors,
                                 size_t jobs_waiting_behind) const;

  // Whether `spec` could ever be placed with these alive actors (enough of one model, new
  // enough for the fields `spec` uses).
  bool Feasible(const wire::JobSpec& spec, const std::vector<ActorSlot>& actors) const;

  const SchedulerOptions& options() const { return options_; }

 private:
  std::optional<std::vector<ActorSlot>> Choose(const std::vector<ActorSlot>& idle, uint32_t n) const;
  // An idle kept gang of n ranks acceptable instead of `chosen` (see above), in rank order.
  std::optional<std::vector<ActorSlot>> ChooseKept(const std::vector<ActorSlot>& idle, uint32_t n,
                                                   const std::vector<ActorSlot>& chosen) const;
  SchedulerOptions options_;
};

// "nccl" when every rank is a GPU actor of one node, else "ucx".
std::string ChannelBackendFor(const std::vector<ActorSlot>& gang);

// The gang id every rank of `gang` keeps with exactly these members in this rank order and
// `channel_backend`; nullopt when any rank keeps another gang or none, or for a gang of one.
std::optional<GangId> KeptGangOf(const std::vector<ActorSlot>& gang, const std::string& channel_backend);

}  // namespace distri::head
