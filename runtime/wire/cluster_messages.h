// The cluster overview a client asks the head for (`distri-cluster status`, the C ABI).
// Added in protocol minor version 1 (docs/runtime-design.md). (Conventions: node_messages.h.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/ids.h"
#include "runtime/common/status.h"
#include "runtime/wire/message_type.h"
#include "runtime/wire/types.h"

namespace distri::wire {

// Most entries of each list of ClusterStatus; the head reports the first ones and sets
// `truncated`.
inline constexpr size_t kMaxStatusEntries = 1024;

// What the head knows of an actor. Values are frozen.
enum class ActorState : uint8_t {
  kIdle = 0,  // registered, alive, no task
  kBusy = 1,  // running one rank of a task (job_id says which)
  kDead = 2,  // missed heartbeats or exited; kept in the table until it registers again
};
std::string_view ActorStateName(ActorState state);  // "idle", "busy", "dead"

struct NodeStatus {
  NodeId node_id;
  std::string hostname;       // <= kMaxNameBytes
  bool alive = false;         // heartbeats arrive
  std::vector<GpuInfo> gpus;  // <= kMaxGpusPerNode
  uint32_t cpu_actors = 0;
  // The protocol minor version its node agent speaks (1.N); 0: unknown (sent by a head older
  // than this field). Informational: an older client ignores it.
  uint32_t protocol_minor = 0;
  bool operator==(const NodeStatus&) const = default;
};

struct ActorStatus {
  ActorId actor_id;
  NodeId node_id;
  int32_t gpu_index = -1;  // -1 for a CPU actor
  ActorState state = ActorState::kIdle;
  JobId job_id;            // the job of its task while busy; nil otherwise
  std::string model;       // <= kMaxNameBytes
  std::string device;      // "cuda:0", "cpu"; <= kMaxNameBytes
  uint32_t protocol_minor = 0;  // the actor's protocol minor version (1.N); 0: unknown (an older head)
  bool operator==(const ActorStatus&) const = default;
};

// Jobs in the store by state.
struct JobStateCounts {
  uint64_t pending = 0;
  uint64_t scheduled = 0;
  uint64_t running = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  uint64_t cancelled = 0;
  bool operator==(const JobStateCounts&) const = default;
};

// A job that holds a gang (SCHEDULED or RUNNING).
struct RunningJob {
  JobId job_id;
  JobState state = JobState::kScheduled;
  uint32_t step = 0;         // steps done, <= total_steps
  uint32_t total_steps = 0;  // <= kMaxSteps
  uint32_t attempt = 0;
  uint32_t gang_size = 0;    // 1..kMaxGangSize
  bool operator==(const RunningJob&) const = default;
};

// client -> head: the cluster overview. Answered by ClusterStatus.
struct GetClusterStatus {
  static constexpr MessageType kType = MessageType::kGetClusterStatus;
  bool operator==(const GetClusterStatus&) const = default;
};

// head -> client, reply to GetClusterStatus.
struct ClusterStatus {
  static constexpr MessageType kType = MessageType::kClusterStatus;
  std::vector<NodeStatus> nodes;    // required; <= kMaxStatusEntries
  std::vector<ActorStatus> actors;  // required; <= kMaxStatusEntries
  JobStateCounts jobs_by_state;     // required
  uint32_t queue_length = 0;        // required; PENDING jobs waiting for a gang
  std::vector<RunningJob> running;  // required; <= kMaxStatusEntries
  bool truncated = false;           // optional; a list was cut to kMaxStatusEntries
  std::string head_version;         // optional; <= kMaxNameBytes
  bool operator==(const ClusterStatus&) const = default;
};

Result<std::string> EncodePayload(const GetClusterStatus& m);
Result<std::string> EncodePayload(const ClusterStatus& m);
Status DecodePayload(std::string_view bytes, GetClusterStatus* out);
Status DecodePayload(std::string_view bytes, ClusterStatus* out);

}  // namespace distri::wire
