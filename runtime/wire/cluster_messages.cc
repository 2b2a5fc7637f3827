#include "runtime/wire/cluster_messages.h"

#include "runtime/wire/schema.h"

namespace distri::wire {

std::string_view ActorStateName(ActorState state) {
  switch (state) {
    case ActorState::kIdle: return "idle";
    case ActorState::kBusy: return "busy";
    case ActorState::kDead: return "dead";
  }
  return "unknown";
}

namespace internal {

template <typename V, Is<NodeStatus> M>
void Fields(V& v, M& m) {
  v.Id("node_id", m.node_id, kRequired);
  v.Str("hostname", m.hostname, kRequired, kMaxNameBytes);
  v.Bool("alive", m.alive, kRequired);
  v.StructList("gpus", m.gpus, kRequired, kMaxGpusPerNode);
  v.Int("cpu_actors", m.cpu_actors, kRequired, 0u, 4096u);
  v.Int("protocol_minor", m.protocol_minor, kOptional, 0u, 255u);
}

template <typename V, Is<ActorStatus> M>
void Fields(V& v, M& m) {
  v.Id("actor_id", m.actor_id, kRequired);
  v.Id("node_id", m.node_id, kRequired);
  v.Int("gpu_index", m.gpu_index, kRequired, -1, 65535);
  v.Enum("state", m.state, kRequired, ActorState::kDead);
  v.Id("job_id", m.job_id, kOptional);
  v.Str("model", m.model, kOptional, kMaxNameBytes);
  v.Str("device", m.device, kOptional, kMaxNameBytes);
  v.Int("protocol_minor", m.protocol_minor, kOptional, 0u, 255u);
}

template <typename V, Is<JobStateCounts> M>
void Fields(V& v, M& m) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  v.Int("pending", m.pending, kRequired, uint64_t{0}, kMax);
  v.Int("scheduled", m.scheduled, kRequired, uint64_t{0}, kMax);
  v.Int("running", m.running, kRequired, uint64_t{0}, kMax);
  v.Int("succeeded", m.succeeded, kRequired, uint64_t{0}, kMax);
  v.Int("failed", m.failed, kRequired, uint64_t{0}, kMax);
  v.Int("cancelled", m.cancelled, kRequired, uint64_t{0}, kMax);
}

template <typename V, Is<RunningJob> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
  v.Enum("state", m.state, kRequired, JobState::kCancelled);
  v.Int("step", m.step, kRequired, 0u, kMaxSteps);
  v.Int("total_steps", m.total_steps, kRequired, 0u, kMaxSteps);
  v.Int("attempt", m.attempt, kRequired, 0u, std::numeric_limits<uint32_t>::max());
  v.Int("gang_size", m.gang_size, kRequired, 0u, static_cast<uint32_t>(kMaxGangSize));
}

template <typename V, Is<GetClusterStatus> M>
void Fields(V&, M&) {}

template <typename V, Is<ClusterStatus> M>
void Fields(V& v, M& m) {
  v.StructList("nodes", m.nodes, kRequired, kMaxStatusEntries);
  v.StructList("actors", m.actors, kRequired, kMaxStatusEntries);
  v.Struct("jobs_by_state", m.jobs_by_state, kRequired);
  v.Int("queue_length", m.queue_length, kRequired, 0u, std::numeric_limits<uint32_t>::max());
  v.StructList("running", m.running, kRequired, kMaxStatusEntries);
  v.Bool("truncated", m.truncated, kOptional);
  v.Str("head_version", m.head_version, kOptional, kMaxNameBytes);
}

template <>
struct Invariants<ClusterStatus> {
  static Status Check(const ClusterStatus& m, const std::string& name) {
    for (size_t i = 0; i < m.running.size(); ++i) {
      if (m.running[i].step > m.running[i].total_steps) {
        return Status::InvalidArgument(name + ".running[" + std::to_string(i) + "]: step " +
                                       std::to_string(m.running[i].step) + " is past total_steps " +
                                       std::to_string(m.running[i].total_steps));
      }
    }
    return Status::Ok();
  }
};

}  // namespace internal

DISTRI_WIRE_DEFINE_CODEC(GetClusterStatus)
DISTRI_WIRE_DEFINE_CODEC(ClusterStatus)

}  // namespace distri::wire
