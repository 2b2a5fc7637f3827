// GangRecord: a gang as the head remembers it for reuse (docs/runtime-design.md, "Kept gangs").
// An actor keeps the channels of its last task's gang when that task succeeded and the gang
// had >= 2 ranks; the head records the same per actor (ActorTable) and reuses the gang id when
// a job is placed on exactly the members that all keep it (GangScheduler).
#pragma once

#include <string>
#include <vector>

#include "runtime/common/ids.h"

namespace distri::head {

struct GangRecord {
  GangId gang_id;
  std::vector<ActorId> members;  // in rank order
  std::string channel_backend;   // "nccl" or "ucx"
  bool operator==(const GangRecord&) const = default;
};

}  // namespace distri::head
