#include "runtime/wire/message_type.h"

namespace distri::wire {

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kRegisterNode: return "RegisterNode";
    case MessageType::kNodeRegistered: return "NodeRegistered";
    case MessageType::kHeartbeat: return "Heartbeat";
    case MessageType::kRegisterActor: return "RegisterActor";
    case MessageType::kActorRegistered: return "ActorRegistered";
    case MessageType::kActorExited: return "ActorExited";
    case MessageType::kGetClusterStatus: return "GetClusterStatus";
    case MessageType::kClusterStatus: return "ClusterStatus";
    case MessageType::kSubmitJob: return "SubmitJob";
    case MessageType::kJobAccepted: return "JobAccepted";
    case MessageType::kGetJob: return "GetJob";
    case MessageType::kJobStatus: return "JobStatus";
    case MessageType::kCancelJob: return "CancelJob";
    case MessageType::kGetJobResult: return "GetJobResult";
    case MessageType::kJobResult: return "JobResult";
    case MessageType::kSubmitJobs: return "SubmitJobs";
    case MessageType::kJobsAccepted: return "JobsAccepted";
    case MessageType::kAssignTask: return "AssignTask";
    case MessageType::kTaskProgress: return "TaskProgress";
    case MessageType::kTaskDone: return "TaskDone";
    case MessageType::kCancelTask: return "CancelTask";
    case MessageType::kReleaseGang: return "ReleaseGang";
    case MessageType::kError: return "Error";
  }
  return "Unknown";
}

std::optional<MessageType> MessageTypeFromValue(uint64_t value) {
  if (value > 0xFFFF) return std::nullopt;
  const auto t = static_cast<MessageType>(value);
  if (MessageTypeName(t) == "Unknown") return std::nullopt;
  return t;
}

}  // namespace distri::wire
