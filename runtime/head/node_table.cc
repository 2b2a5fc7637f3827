#include "runtime/head/node_table.h"

#include <algorithm>

namespace distri::head {

void NodeTable::Register(const NodeId& id, const wire::NodeResources& resources, const std::string& agent_version,
                         const std::string& peer, int64_t now_ms, uint8_t wire_minor) {
  NodeEntry& e = nodes_[id];
  e.id = id;
  e.resources = resources;
  e.agent_version = agent_version;
  e.peer = peer;
  e.wire_minor = wire_minor;
  e.last_seen_ms = now_ms;
  e.alive = true;
}

std::optional<NodeId> NodeTable::Heartbeat(const std::string& peer, int64_t now_ms) {
  for (auto& [id, e] : nodes_) {
    if (e.peer == peer && e.alive) {
      e.last_seen_ms = now_ms;
      return id;
    }
  }
  return std::nullopt;
}

std::vector<NodeId> NodeTable::Sweep(int64_t now_ms) {
  std::vector<NodeId> died;
  for (auto& [id, e] : nodes_) {
    if (e.alive && now_ms - e.last_seen_ms > timeout_ms_) {
      e.alive = false;
      died.push_back(id);
    }
  }
  return died;
}

void NodeTable::MarkDead(const NodeId& id) {
  auto it = nodes_.find(id);
  if (it != nodes_.end()) it->second.alive = false;
}

const NodeEntry* NodeTable::Find(const NodeId& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

const NodeEntry* NodeTable::FindByPeer(const std::string& peer) const {
  for (const auto& [id, e] : nodes_) {
    if (e.peer == peer) return &e;
  }
  return nullptr;
}

std::vector<const NodeEntry*> NodeTable::All() const {
  std::vector<const NodeEntry*> out;
  for (const auto& [id, e] : nodes_) out.push_back(&e);
  return out;
}

size_t NodeTable::AliveCapacity() const {
  size_t n = 0;
  for (const auto& [id, e] : nodes_) {
    if (e.alive) n += e.resources.gpus.size() + e.resources.cpu_actors;
  }
  return n;
}

bool NodeTable::AnyAliveNodeLists(const std::string& model) const {
  for (const auto& [id, e] : nodes_) {
    if (e.alive && std::find(e.resources.models.begin(), e.resources.models.end(), model) != e.resources.models.end())
      return true;
  }
  return false;
}

}  // namespace distri::head
