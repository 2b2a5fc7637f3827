// The control-plane protocol in one include: envelope, every message, and typed helpers.
//
//   // requester
//   DISTRI_ASSIGN_OR_RETURN(std::string bytes, wire::Seal(wire::GetJob{id}, 42, "client:cli"));
//   ... send bytes, receive `reply` (an Envelope) ...
//   DISTRI_ASSIGN_OR_RETURN(wire::JobStatus st, wire::Open<wire::JobStatus>(reply));
//
//   // server
//   DISTRI_ASSIGN_OR_RETURN(wire::AnyMessage msg, wire::DecodeMessage(envelope));
//   std::visit(handler, msg);
//
// All functions are pure (no global state) and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "runtime/common/status.h"
#include "runtime/wire/actor_messages.h"
#include "runtime/wire/cluster_messages.h"
#include "runtime/wire/envelope.h"
#include "runtime/wire/job_messages.h"
#include "runtime/wire/limits.h"
#include "runtime/wire/message_type.h"
#include "runtime/wire/node_messages.h"
#include "runtime/wire/task_messages.h"
#include "runtime/wire/types.h"

namespace distri::wire {

using AnyMessage = std::variant<RegisterNode, NodeRegistered, Heartbeat, SubmitJob, JobAccepted, GetJob,
                                JobStatus, CancelJob, GetJobResult, JobResult, AssignTask, TaskProgress,
                                TaskDone, Error, RegisterActor, ActorRegistered, ActorExited,
                                GetClusterStatus, ClusterStatus, CancelTask, ReleaseGang, SubmitJobs,
                                JobsAccepted>;

// Decodes the payload of `envelope` into the message its type names. Errors name the message
// and field ("SubmitJob.width: value 0 outside [1, 16384]").
Result<AnyMessage> DecodeMessage(const Envelope& envelope);
// DecodeEnvelope then DecodeMessage: everything a receiver does with untrusted bytes.
Result<AnyMessage> DecodeMessage(std::string_view envelope_bytes);

// The type of a decoded message.
MessageType TypeOf(const AnyMessage& message);

// Whether `status` (a peer's Error, as Open returns it) says that the peer does not know
// message type `type`: the answer of a peer of an older minor version (message_type.h),
// InvalidArgument naming "unknown message type <value>". Such a peer cannot decode the
// envelope's header, so its Error carries request id 0, not the request's.
bool IsUnknownMessageTypeError(const Status& status, MessageType type);

// An envelope carrying `message`.
template <typename M>
Result<Envelope> MakeEnvelope(const M& message, uint64_t request_id, std::string_view sender_id) {
  DISTRI_ASSIGN_OR_RETURN(std::string payload, EncodePayload(message));
  Envelope e;
  e.type = M::kType;
  e.request_id = request_id;
  e.sender_id = std::string(sender_id);
  e.payload = std::move(payload);
  return e;
}

// The bytes of an envelope carrying `message`, ready to send.
template <typename M>
Result<std::string> Seal(const M& message, uint64_t request_id, std::string_view sender_id) {
  DISTRI_ASSIGN_OR_RETURN(Envelope e, MakeEnvelope(message, request_id, sender_id));
  return EncodeEnvelope(e);
}

// The message of type M in `envelope`. When the envelope holds an Error instead (the peer's
// answer to a failed request), returns that error's Status, so callers can write
// `DISTRI_ASSIGN_OR_RETURN(auto st, Open<JobStatus>(reply))`. Any other type is
// InvalidArgument ("expected JobStatus, received Heartbeat").
template <typename M>
Result<M> Open(const Envelope& envelope) {
  if (envelope.type != M::kType) {
    if (envelope.type == MessageType::kError) {
      Error err;
      DISTRI_RETURN_IF_ERROR(DecodePayload(envelope.payload, &err));
      Status s = err.ToStatus();
      return Status(s.code(), "peer '" + envelope.sender_id + "' answered with an error: " + s.message());
    }
    return Status::InvalidArgument("expected " + std::string(MessageTypeName(M::kType)) + ", received " +
                                   std::string(MessageTypeName(envelope.type)));
  }
  M m;
  DISTRI_RETURN_IF_ERROR(DecodePayload(envelope.payload, &m));
  return m;
}

}  // namespace distri::wire
