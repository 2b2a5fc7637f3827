// Messages between a node agent and the head: registration and liveness.
//
// Every message struct has kType (its frozen MessageType) and an EncodePayload /
// DecodePayload pair. Encode fails (InvalidArgument, naming the field) when a field breaks a
// limit of limits.h; Decode accepts exactly what Encode can produce, plus unknown fields,
// which it ignores.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/common/ids.h"
#include "runtime/common/status.h"
#include "runtime/wire/message_type.h"
#include "runtime/wire/types.h"

namespace distri::wire {

// node -> head, once when the agent starts (and again after the head restarts). The head
// answers NodeRegistered or Error.
struct RegisterNode {
  static constexpr MessageType kType = MessageType::kRegisterNode;
  NodeId node_id;           // required; chosen by the agent (random), stable for its lifetime
  NodeResources resources;  // required; GPUs, CPU actors, hostname, models
  std::string agent_version;  // optional; distri version of the agent, for `status` and logs
  bool operator==(const RegisterNode&) const = default;
};

// head -> node, reply to RegisterNode.
struct NodeRegistered {
  static constexpr MessageType kType = MessageType::kNodeRegistered;
  NodeId node_id;                      // required; the id the head recorded (echoes the request)
  uint32_t heartbeat_interval_ms = 0;  // required; how often to send Heartbeat, 1..3,600,000
  bool operator==(const NodeRegistered&) const = default;
};

// node or actor -> head, every heartbeat_interval_ms. No reply; the head marks a sender dead
// after a few missed intervals.
struct Heartbeat {
  static constexpr MessageType kType = MessageType::kHeartbeat;
  uint64_t sequence = 0;      // required; increases by one per heartbeat of this sender
  uint64_t unix_time_ms = 0;  // required; sender's wall clock (the head logs large skews)
  uint32_t busy_actors = 0;   // optional; actors of the node currently running a task
  bool operator==(const Heartbeat&) const = default;
};

Result<std::string> EncodePayload(const RegisterNode& m);
Result<std::string> EncodePayload(const NodeRegistered& m);
Result<std::string> EncodePayload(const Heartbeat& m);
Status DecodePayload(std::string_view bytes, RegisterNode* out);
Status DecodePayload(std::string_view bytes, NodeRegistered* out);
Status DecodePayload(std::string_view bytes, Heartbeat* out);

}  // namespace distri::wire
