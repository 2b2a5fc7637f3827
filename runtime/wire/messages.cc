#include "runtime/wire/messages.h"

#include <cctype>

namespace distri::wire {
namespace {

template <typename M>
Result<AnyMessage> DecodeAs(const Envelope& e) {
  M m;
  DISTRI_RETURN_IF_ERROR(DecodePayload(e.payload, &m));
  return AnyMessage(std::move(m));
}

}  // namespace

Result<AnyMessage> DecodeMessage(const Envelope& e) {
  switch (e.type) {
    case MessageType::kRegisterNode: return DecodeAs<RegisterNode>(e);
    case MessageType::kNodeRegistered: return DecodeAs<NodeRegistered>(e);
    case MessageType::kHeartbeat: return DecodeAs<Heartbeat>(e);
    case MessageType::kRegisterActor: return DecodeAs<RegisterActor>(e);
    case MessageType::kActorRegistered: return DecodeAs<ActorRegistered>(e);
    case MessageType::kActorExited: return DecodeAs<ActorExited>(e);
    case MessageType::kGetClusterStatus: return DecodeAs<GetClusterStatus>(e);
    case MessageType::kClusterStatus: return DecodeAs<ClusterStatus>(e);
    case MessageType::kSubmitJob: return DecodeAs<SubmitJob>(e);
    case MessageType::kJobAccepted: return DecodeAs<JobAccepted>(e);
    case MessageType::kGetJob: return DecodeAs<GetJob>(e);
    case MessageType::kJobStatus: return DecodeAs<JobStatus>(e);
    case MessageType::kCancelJob: return DecodeAs<CancelJob>(e);
    case MessageType::kGetJobResult: return DecodeAs<GetJobResult>(e);
    case MessageType::kJobResult: return DecodeAs<JobResult>(e);
    case MessageType::kSubmitJobs: return DecodeAs<SubmitJobs>(e);
    case MessageType::kJobsAccepted: return DecodeAs<JobsAccepted>(e);
    case MessageType::kAssignTask: return DecodeAs<AssignTask>(e);
    case MessageType::kTaskProgress: return DecodeAs<TaskProgress>(e);
    case MessageType::kTaskDone: return DecodeAs<TaskDone>(e);
    case MessageType::kCancelTask: return DecodeAs<CancelTask>(e);
    case MessageType::kReleaseGang: return DecodeAs<ReleaseGang>(e);
    case MessageType::kError: return DecodeAs<Error>(e);
  }
  return Status::InvalidArgument("unknown message type " + std::to_string(static_cast<uint16_t>(e.type)));
}

Result<AnyMessage> DecodeMessage(std::string_view envelope_bytes) {
  DISTRI_ASSIGN_OR_RETURN(Envelope e, DecodeEnvelope(envelope_bytes));
  return DecodeMessage(e);
}

MessageType TypeOf(const AnyMessage& message) {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kType; }, message);
}

bool IsUnknownMessageTypeError(const Status& status, MessageType type) {
  // The text is the contract: DecodeEnvelope of every version writes it (message_type.h).
  // Matching the number keeps the answer about another message from passing for this one.
  const std::string text = "unknown message type " + std::to_string(static_cast<uint16_t>(type));
  const std::string& m = status.message();
  for (size_t at = m.find(text); at != std::string::npos; at = m.find(text, at + 1)) {
    const size_t end = at + text.size();
    if (end == m.size() || !std::isdigit(static_cast<unsigned char>(m[end]))) {
      return status.code() == StatusCode::kInvalidArgument;
    }
  }
  return false;
}

}  // namespace distri::wire
