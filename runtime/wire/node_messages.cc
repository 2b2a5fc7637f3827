#include "runtime/wire/node_messages.h"

#include "runtime/wire/schema.h"

namespace distri::wire {
namespace internal {

template <typename V, Is<RegisterNode> M>
void Fields(V& v, M& m) {
  v.Id("node_id", m.node_id, kRequired);
  v.Struct("resources", m.resources, kRequired);
  v.Str("agent_version", m.agent_version, kOptional, kMaxNameBytes);
}

template <typename V, Is<NodeRegistered> M>
void Fields(V& v, M& m) {
  v.Id("node_id", m.node_id, kRequired);
  v.Int("heartbeat_interval_ms", m.heartbeat_interval_ms, kRequired, 1u, 3600u * 1000u);
}

template <typename V, Is<Heartbeat> M>
void Fields(V& v, M& m) {
  v.Int("sequence", m.sequence, kRequired, uint64_t{0}, std::numeric_limits<uint64_t>::max());
  v.Int("unix_time_ms", m.unix_time_ms, kRequired, uint64_t{0}, std::numeric_limits<uint64_t>::max());
  v.Int("busy_actors", m.busy_actors, kOptional, 0u, 65535u);
}

}  // namespace internal

DISTRI_WIRE_DEFINE_CODEC(RegisterNode)
DISTRI_WIRE_DEFINE_CODEC(NodeRegistered)
DISTRI_WIRE_DEFINE_CODEC(Heartbeat)

}  // namespace distri::wire
