// The version gate: whether a job can never run because every actor that could take it speaks
// an older protocol minor version than a JobSpec field it uses (docs/runtime-design.md,
// "Peers of older minor versions"). Pure, like GangScheduler.
//
// The scheduler already never places a job on an actor too old for it (gang_scheduler.h); a
// job some new-enough actor of its model can take waits for one. This decides when waiting is
// pointless and the job must fail (or a SubmitJob be refused) with an error naming the fields
// and the versions instead of waiting forever:
//   - the job uses a versioned field (wire::MinorVersionNeeded > 0),
//   - at least one alive actor of its model exists ("" = any model) and every one of them is
//     too old (with none at all the usual rules apply: the job waits, or the head refuses a
//     model nobody holds),
//   - and no alive node agent new enough could still bring a new-enough actor: a node whose
//     protocol minor version is high enough, that lists the model (or no models), and that has
//     fewer alive actors than its GPUs + CPU actors (still starting them, or restarting one)
//     makes the job wait. Node agents start actors of their own build.
// The head applies it only after its first liveness timeout (heartbeat interval x missed
// heartbeats): right after a head restart, peers are still registering again in any order.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/head/gang_scheduler.h"
#include "runtime/head/node_table.h"
#include "runtime/wire/types.h"

namespace distri::head {

// Why `spec` can never run on these peers (see above), or nullopt when it can or may yet.
// `actors`: the alive actors as the scheduler sees them; `nodes`: the known nodes (dead ones
// are skipped). The reason names the fields, the versions they need and the actors' versions:
// "guidance_rescale (since 1.4) is unknown to every alive actor of model 'tiny' (protocol 1.3):
// an older actor would drop it and render another image; upgrade the actors (distri-worker)".
std::optional<std::string> TooOldForJob(const wire::JobSpec& spec, const std::vector<ActorSlot>& actors,
                                        const std::vector<const NodeEntry*>& nodes);

}  // namespace distri::head
