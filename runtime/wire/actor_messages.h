// Messages between an actor (or the node agent that hosts it) and the head: registration,
// exits, task cancellation. Added in protocol minor version 1 (docs/runtime-design.md).
// (Conventions: node_messages.h.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/common/ids.h"
#include "runtime/common/status.h"
#include "runtime/wire/message_type.h"
#include "runtime/wire/types.h"

namespace distri::wire {

// actor -> head, once the actor process has loaded its model and is ready for tasks (and again
// after the head restarts). The head answers ActorRegistered or Error. Afterwards the actor
// sends Heartbeat every heartbeat_interval_ms on the same connection; the head identifies the
// actor by that connection.
struct RegisterActor {
  static constexpr MessageType kType = MessageType::kRegisterActor;
  ActorId actor_id;     // required; chosen by the node agent, stable across restarts of the process
  NodeId node_id;       // required; the node agent that started the actor
  int32_t gpu_index = -1;  // required; CUDA ordinal on its node, -1 for a CPU actor
  uint32_t pid = 0;     // required; the actor's process id on its node (1..2^31-1)
  std::string model;    // required; name of the loaded model, 1..kMaxNameBytes bytes
  std::string device;   // required; "cuda:0", "cpu"; 1..kMaxNameBytes bytes
  bool operator==(const RegisterActor&) const = default;
};

// head -> actor, reply to RegisterActor.
struct ActorRegistered {
  static constexpr MessageType kType = MessageType::kActorRegistered;
  ActorId actor_id;                    // required; echoes the request
  uint32_t heartbeat_interval_ms = 0;  // required; 1..3,600,000
  bool operator==(const ActorRegistered&) const = default;
};

// node -> head: an actor process of this node exited (crash, kill, OOM). The head marks the
// actor dead at once and re-queues its job. No reply.
struct ActorExited {
  static constexpr MessageType kType = MessageType::kActorExited;
  ActorId actor_id;        // required
  int32_t exit_code = 0;   // required; the exit status, or -1 when it died of a signal
  int32_t signal = 0;      // required; the signal that killed it (9 = SIGKILL), 0 when it exited
  bool restarting = false; // required; the node agent starts it again (it will RegisterActor anew)
  bool operator==(const ActorExited&) const = default;
};

// head -> actor: abort the task of (job_id, attempt): the actor aborts the gang's channel,
// drops the task and answers TaskDone with error_code Cancelled. An actor that has no such
// task ignores it. Sent to the surviving ranks when a rank dies and when a client cancels.
struct CancelTask {
  static constexpr MessageType kType = MessageType::kCancelTask;
  JobId job_id;          // required
  uint32_t attempt = 0;  // required; only this attempt is cancelled
  bool operator==(const CancelTask&) const = default;
};

// head -> actor (minor version 3): destroy this actor's channels of gang `gang_id`, kept (idle
// after a successful task of that gang) or parked (set aside, undestroyed, when a task of
// another gang came). The head sends it to every live member of a kept gang at once when it
// breaks that gang, so that all ranks tear the communicators down together (NCCL's finalize
// and abort are collective: docs/runtime-design.md, "Kept gangs"). An actor that holds no
// such gang ignores it. No reply.
struct ReleaseGang {
  static constexpr MessageType kType = MessageType::kReleaseGang;
  GangId gang_id;  // required, not nil
  bool operator==(const ReleaseGang&) const = default;
};

Result<std::string> EncodePayload(const RegisterActor& m);
Result<std::string> EncodePayload(const ActorRegistered& m);
Result<std::string> EncodePayload(const ActorExited& m);
Result<std::string> EncodePayload(const CancelTask& m);
Status DecodePayload(std::string_view bytes, RegisterActor* out);
Status DecodePayload(std::string_view bytes, ActorRegistered* out);
Status DecodePayload(std::string_view bytes, ActorExited* out);
Status DecodePayload(std::string_view bytes, CancelTask* out);
Result<std::string> EncodePayload(const ReleaseGang& m);
Status DecodePayload(std::string_view bytes, ReleaseGang* out);

}  // namespace distri::wire
