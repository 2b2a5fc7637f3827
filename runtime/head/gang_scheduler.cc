#include "runtime/head/gang_scheduler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "runtime/wire/field_versions.h"

namespace distri::head {
namespace {

uint32_t FloorPow2(size_t n) {
  uint32_t p = 1;
  while (static_cast<size_t>(p) * 2 <= n) p *= 2;
  return p;
}

// Alive actors per model, for the models a job may use, among the actors that know every
// field it uses (an older one would drop a field: for this job it does not exist).
std::map<std::string, std::vector<ActorSlot>> ByModel(const wire::JobSpec& spec, const std::vector<ActorSlot>& actors) {
  const uint8_t needed = wire::MinorVersionNeeded(spec);
  std::map<std::string, std::vector<ActorSlot>> out;
  for (const ActorSlot& a : actors) {
    if ((spec.model.empty() || a.model == spec.model) && a.wire_minor >= needed) out[a.model].push_back(a);
  }
  return out;
}

size_t DistinctNodes(const std::vector<ActorSlot>& gang) {
  std::set<NodeId> nodes;
  for (const ActorSlot& a : gang) nodes.insert(a.node_id);
  return nodes.size();
}

}  // namespace

std::optional<GangId> KeptGangOf(const std::vector<ActorSlot>& gang, const std::string& channel_backend) {
  if (gang.size() < 2 || !gang.front().kept) return std::nullopt;
  const GangRecord& k = *gang.front().kept;
  if (k.channel_backend != channel_backend || k.members.size() != gang.size()) return std::nullopt;
  for (size_t r = 0; r < gang.size(); ++r) {
    if (!gang[r].kept || *gang[r].kept != k || k.members[r] != gang[r].actor_id) return std::nullopt;
  }
  return k.gang_id;
}

std::string ChannelBackendFor(const std::vector<ActorSlot>& gang) {
  for (const ActorSlot& a : gang) {
    if (a.gpu_index < 0 || a.node_id != gang.front().node_id) return "ucx";
  }
  return "nccl";
}

uint32_t GangScheduler::AutoGangSize(uint32_t width, uint32_t height, size_t behind, size_t alive) const {
  const double side = std::sqrt(static_cast<double>(width) * static_cast<double>(height));
  uint32_t want = options_.auto_max_gang;
  if (side <= options_.auto_one_max_side) {
    want = 1;
  } else if (side <= options_.auto_two_max_side) {
    want = 2;
  } else if (side <= options_.auto_four_max_side) {
    want = 4;
  }
  want = std::min(want, options_.auto_max_gang);
  const size_t share = std::max<size_t>(1, alive / (behind + 1));
  const size_t n = std::max<size_t>(1, std::min<size_t>({want, share, std::max<size_t>(alive, 1)}));
  return FloorPow2(n);
}

uint32_t GangScheduler::GangSize(const wire::JobSpec& spec, size_t behind, size_t alive) const {
  if (spec.gpus > 0) return spec.gpus;
  return AutoGangSize(spec.width, spec.height, behind, alive);
}

bool GangScheduler::Feasible(const wire::JobSpec& spec, const std::vector<ActorSlot>& actors) const {
  for (const auto& [model, slots] : ByModel(spec, actors)) {
    if (slots.size() >= std::max<uint32_t>(spec.gpus, 1)) return true;
  }
  return false;
}

std::optional<Placement> GangScheduler::Place(const wire::JobSpec& spec, const std::vector<ActorSlot>& actors,
                                              size_t behind) const {
  // For "" (any model), try the models with the most idle actors first.
  std::vector<std::pair<std::string, std::vector<ActorSlot>>> candidates;
  for (auto& [model, slots] : ByModel(spec, actors)) candidates.emplace_back(model, slots);
  auto idle_count = [](const std::vector<ActorSlot>& s) {
    return std::count_if(s.begin(), s.end(), [](const ActorSlot& a) { return a.idle; });
  };
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](const auto& a, const auto& b) { return idle_count(a.second) > idle_count(b.second); });
  for (const auto& [model, slots] : candidates) {
    const uint32_t n = GangSize(spec, behind, slots.size());
    std::vector<ActorSlot> idle;
    for (const ActorSlot& a : slots) {
      if (a.idle) idle.push_back(a);
    }
    if (idle.size() < n) continue;
    std::optional<std::vector<ActorSlot>> gang = Choose(idle, n);
    if (!gang) continue;
    if (auto kept = ChooseKept(idle, n, *gang)) gang = std::move(kept);
    Placement p;
    p.gang = std::move(*gang);
    p.model = model;
    p.channel_backend = ChannelBackendFor(p.gang);
    p.kept_gang = KeptGangOf(p.gang, p.channel_backend);
    return p;
  }
  return std::nullopt;
}

std::optional<std::vector<ActorSlot>> GangScheduler::ChooseKept(const std::vector<ActorSlot>& idle, uint32_t n,
                                                               const std::vector<ActorSlot>& chosen) const {
  if (n < 2) return std::nullopt;
  std::map<ActorId, const ActorSlot*> by_id;
  std::map<GangId, GangRecord> candidates;  // by gang id: ties go to the lowest
  for (const ActorSlot& a : idle) {
    by_id[a.actor_id] = &a;
    if (a.kept && a.kept->members.size() == n) candidates.emplace(a.kept->gang_id, *a.kept);
  }
  const size_t chosen_nodes = DistinctNodes(chosen);
  for (const auto& [id, record] : candidates) {
    std::vector<ActorSlot> gang;
    for (const ActorId& member : record.members) {
      auto it = by_id.find(member);
      if (it == by_id.end()) break;
      gang.push_back(*it->second);
    }
    if (gang.size() != n || KeptGangOf(gang, ChannelBackendFor(gang)) != id) continue;
    const size_t nodes = DistinctNodes(gang);
    const bool acceptable =
        options_.strategy == PlacementStrategy::kPack ? nodes <= chosen_nodes : nodes >= chosen_nodes;
    if (acceptable) return gang;
  }
  return std::nullopt;
}

std::optional<std::vector<ActorSlot>> GangScheduler::Choose(const std::vector<ActorSlot>& idle, uint32_t n) const {
  std::map<NodeId, std::vector<ActorSlot>> by_node;
  for (const ActorSlot& a : idle) by_node[a.node_id].push_back(a);
  for (auto& [node, v] : by_node) {
    std::sort(v.begin(), v.end(), [](const ActorSlot& a, const ActorSlot& b) {
      return a.gpu_index != b.gpu_index ? a.gpu_index < b.gpu_index : a.actor_id < b.actor_id;
    });
  }
  // Nodes by idle actors, most first (ties: node id order, for determinism).
  std::vector<std::pair<NodeId, std::vector<ActorSlot>*>> nodes;
  for (auto& [node, v] : by_node) nodes.emplace_back(node, &v);
  std::stable_sort(nodes.begin(), nodes.end(),
                   [](const auto& a, const auto& b) { return a.second->size() > b.second->size(); });

  std::vector<ActorSlot> gang;
  if (options_.strategy == PlacementStrategy::kPack) {
    // Best fit: the node with the fewest idle actors that still holds the whole gang.
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      if (it->second->size() >= n) {
        gang.assign(it->second->begin(), it->second->begin() + n);
        return gang;
      }
    }
    // Needed: spread over the fullest nodes first.
    std::map<NodeId, std::vector<ActorSlot>> taken;
    size_t left = n;
    for (auto& [node, v] : nodes) {
      const size_t k = std::min(left, v->size());
      taken[node].assign(v->begin(), v->begin() + k);
      left -= k;
      if (left == 0) break;
    }
    if (left > 0) return std::nullopt;
    for (const auto& [node, v] : taken) gang.insert(gang.end(), v.begin(), v.end());
    return gang;
  }
  // SPREAD: round-robin over nodes.
  std::map<NodeId, std::vector<ActorSlot>> taken;
  size_t count = 0;
  for (size_t round = 0; count < n; ++round) {
    bool any = false;
    for (auto& [node, v] : nodes) {
      if (count == n) break;
      if (round < v->size()) {
        taken[node].push_back((*v)[round]);
        ++count;
        any = true;
      }
    }
    if (!any) return std::nullopt;
  }
  for (const auto& [node, v] : taken) gang.insert(gang.end(), v.begin(), v.end());
  return gang;
}

}  // namespace distri::head
