#include "runtime/wire/actor_messages.h"

#include "runtime/wire/schema.h"

namespace distri::wire {
namespace internal {

template <typename V, Is<RegisterActor> M>
void Fields(V& v, M& m) {
  v.Id("actor_id", m.actor_id, kRequired);
  v.Id("node_id", m.node_id, kRequired);
  v.Int("gpu_index", m.gpu_index, kRequired, -1, 65535);
  v.Int("pid", m.pid, kRequired, 1u, static_cast<uint32_t>(std::numeric_limits<int32_t>::max()));
  v.Str("model", m.model, kRequired, kMaxNameBytes, 1);
  v.Str("device", m.device, kRequired, kMaxNameBytes, 1);
}

template <typename V, Is<ActorRegistered> M>
void Fields(V& v, M& m) {
  v.Id("actor_id", m.actor_id, kRequired);
  v.Int("heartbeat_interval_ms", m.heartbeat_interval_ms, kRequired, 1u, 3600u * 1000u);
}

template <typename V, Is<ActorExited> M>
void Fields(V& v, M& m) {
  v.Id("actor_id", m.actor_id, kRequired);
  v.Int("exit_code", m.exit_code, kRequired, std::numeric_limits<int32_t>::min(),
        std::numeric_limits<int32_t>::max());
  v.Int("signal", m.signal, kRequired, 0, 255);
  v.Bool("restarting", m.restarting, kRequired);
}

template <typename V, Is<CancelTask> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
  v.Int("attempt", m.attempt, kRequired, 0u, std::numeric_limits<uint32_t>::max());
}

template <typename V, Is<ReleaseGang> M>
void Fields(V& v, M& m) {
  v.Id("gang_id", m.gang_id, kRequired);
}

template <>
struct Invariants<ReleaseGang> {
  static Status Check(const ReleaseGang& m, const std::string& name) {
    if (m.gang_id.IsNil()) return Status::InvalidArgument(name + ".gang_id: the nil id is not a gang");
    return Status::Ok();
  }
};

template <>
struct Invariants<RegisterActor> {
  static Status Check(const RegisterActor& m, const std::string& name) {
    if (m.actor_id.IsNil()) return Status::InvalidArgument(name + ".actor_id: the nil id is not an actor");
    if (m.node_id.IsNil()) return Status::InvalidArgument(name + ".node_id: the nil id is not a node");
    return Status::Ok();
  }
};

}  // namespace internal

DISTRI_WIRE_DEFINE_CODEC(RegisterActor)
DISTRI_WIRE_DEFINE_CODEC(ActorRegistered)
DISTRI_WIRE_DEFINE_CODEC(ActorExited)
DISTRI_WIRE_DEFINE_CODEC(CancelTask)
DISTRI_WIRE_DEFINE_CODEC(ReleaseGang)

}  // namespace distri::wire
