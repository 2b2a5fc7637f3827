// NodeTable: the node agents known to the head, their resources and liveness.
//
// A node is alive from RegisterNode until it misses `missed_heartbeats` heartbeat intervals
// (Sweep). A node that registers again (after its own restart or the head's) is alive again
// with its new resources and connection. Times are milliseconds of a monotonic clock chosen by
// the caller (tests pass their own). Not thread-safe (the head's server thread).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/ids.h"
#include "runtime/wire/message_type.h"
#include "runtime/wire/types.h"

namespace distri::head {

struct NodeEntry {
  NodeId id;
  wire::NodeResources resources;
  std::string agent_version;
  std::string peer;  // ROUTER routing id of its connection
  // The protocol minor version of its RegisterNode's envelope. The actors a node agent starts
  // are its own build's (distri-worker next to distri-node), so a node of a minor version
  // still starting or restarting actors may yet bring actors of that version.
  uint8_t wire_minor = wire::kProtocolVersionMinor;
  int64_t last_seen_ms = 0;
  bool alive = true;
};

class NodeTable {
 public:
  NodeTable(int64_t heartbeat_interval_ms, int missed_heartbeats)
      : timeout_ms_(heartbeat_interval_ms * missed_heartbeats) {}

  // Adds or refreshes a node (alive, new resources, peer and protocol minor version).
  void Register(const NodeId& id, const wire::NodeResources& resources, const std::string& agent_version,
                const std::string& peer, int64_t now_ms, uint8_t wire_minor = wire::kProtocolVersionMinor);
  // A heartbeat on connection `peer`: the node it belongs to, or nullopt when unknown.
  std::optional<NodeId> Heartbeat(const std::string& peer, int64_t now_ms);
  // Marks nodes silent for longer than the timeout dead; returns those that just died.
  std::vector<NodeId> Sweep(int64_t now_ms);
  void MarkDead(const NodeId& id);

  const NodeEntry* Find(const NodeId& id) const;
  const NodeEntry* FindByPeer(const std::string& peer) const;
  // All nodes, in id order.
  std::vector<const NodeEntry*> All() const;
  // Actors the alive nodes offer (GPUs + CPU actors): the largest gang the cluster can form.
  size_t AliveCapacity() const;
  // Whether an alive node lists `model` (nodes that list no models are not counted).
  bool AnyAliveNodeLists(const std::string& model) const;

 private:
  int64_t timeout_ms_;
  std::map<NodeId, NodeEntry> nodes_;
};

}  // namespace distri::head
