// Message types of the control plane and the protocol version.
//
// MessageType values are frozen: a value never changes meaning and is never reused, even when
// a message is retired (like zmq's socket options). New messages take new values and bump the
// protocol's minor version; a peer answers a type it does not know with an Error
// (InvalidArgument "unknown message type N", with request id 0: it cannot read the header;
// IsUnknownMessageTypeError in messages.h recognizes it, so a newer requester can fall back).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace distri::wire {

// Protocol version carried by every envelope. A receiver rejects another major version (the
// layout of the envelope or of messages changed incompatibly) and accepts any minor version
// of its own major (new optional fields and new message types only). A peer of an older minor
// version drops the fields it does not know: senders check the JobSpec fields they send
// against the receiver's announced minor version (field_versions.h).
inline constexpr uint8_t kProtocolVersionMajor = 1;
// Minor version history: 0 = node/job/task messages; 1 = actor registration and exits,
// cluster status, CancelTask (docs/runtime-design.md); 2 = JobSpec.sync_mode and
// JobSpec.warmup_steps (optional); 3 = ReleaseGang (docs/runtime-design.md, "Kept gangs"),
// later the optional latent preview fields (JobSpec.preview_every, GetJob.with_preview,
// JobStatus.preview, TaskProgress.preview); 4 = JobSpec.guidance_rescale (optional);
// 5 = SubmitJobs / JobsAccepted (a batch of jobs in one message, docs/runtime-design.md).
inline constexpr uint8_t kProtocolVersionMinor = 5;

enum class MessageType : uint16_t {
  // 0 is never a valid type (a zeroed buffer must not parse as a message).
  // Node agent <-> head.
  kRegisterNode = 1,     // node -> head: resources of the node
  kNodeRegistered = 2,   // head -> node: registration accepted
  kHeartbeat = 3,        // node/actor -> head: liveness
  // Actors (and their node agent) <-> head; minor version 1.
  kRegisterActor = 4,    // actor -> head: ready, with its model and device
  kActorRegistered = 5,  // head -> actor: registration accepted
  kActorExited = 6,      // node -> head: an actor process exited
  // Cluster overview; minor version 1.
  kGetClusterStatus = 7, // client -> head: nodes, actors, queue, running jobs
  kClusterStatus = 8,    // head -> client: the overview
  // Client <-> head.
  kSubmitJob = 10,       // client -> head: render one image
  kJobAccepted = 11,     // head -> client: job recorded durably, id assigned
  kGetJob = 12,          // client -> head: ask for a job's state
  kJobStatus = 13,       // head -> client: state and progress of a job
  kCancelJob = 14,       // client -> head: cancel a job (answered by JobStatus)
  kGetJobResult = 15,    // client -> head: fetch the image of a finished job
  kJobResult = 16,       // head -> client: the image and its metadata
  kSubmitJobs = 17,      // client -> head: render a batch of images, queued together; minor 5
  kJobsAccepted = 18,    // head -> client: the whole batch recorded durably, ids in order; minor 5
  // Head <-> actors.
  kAssignTask = 20,      // head -> actor: one rank of a gang for one job
  kTaskProgress = 21,    // actor -> head: denoising step i of n
  kTaskDone = 22,        // actor -> head: the rank finished (image on rank 0) or failed
  kCancelTask = 23,      // head -> actor: abort one attempt of a task; minor version 1
  kReleaseGang = 24,     // head -> actor: destroy a kept or parked gang's channels; minor 3
  // Any direction.
  kError = 30,           // the request named by the envelope's request id failed
};

// "SubmitJob", ...; "Unknown" for values outside the enum.
std::string_view MessageTypeName(MessageType type);
// The MessageType with this numeric value, or nullopt when the value is not a known type.
std::optional<MessageType> MessageTypeFromValue(uint64_t value);

}  // namespace distri::wire
