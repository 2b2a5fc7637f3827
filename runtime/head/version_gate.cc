#include "runtime/head/version_gate.h"

#include <algorithm>
#include <map>
#include <set>

#include "runtime/wire/field_versions.h"
#include "runtime/wire/message_type.h"

namespace distri::head {
namespace {

bool NodeMayHold(const NodeEntry& node, const std::string& model) {
  const std::vector<std::string>& listed = node.resources.models;
  return model.empty() || listed.empty() || std::find(listed.begin(), listed.end(), model) != listed.end();
}

}  // namespace

std::optional<std::string> TooOldForJob(const wire::JobSpec& spec, const std::vector<ActorSlot>& actors,
                                        const std::vector<const NodeEntry*>& nodes) {
  const uint8_t needed = wire::MinorVersionNeeded(spec);
  if (needed == 0) return std::nullopt;
  std::set<uint8_t> versions;  // of the alive actors of the model
  std::map<NodeId, size_t> alive_on_node;
  for (const ActorSlot& a : actors) {
    ++alive_on_node[a.node_id];
    if (!spec.model.empty() && a.model != spec.model) continue;
    if (a.wire_minor >= needed) return std::nullopt;  // the job waits for it (or runs)
    versions.insert(a.wire_minor);
  }
  if (versions.empty()) return std::nullopt;  // nobody holds the model: the usual rules
  for (const NodeEntry* n : nodes) {
    if (!n->alive || n->wire_minor < needed || !NodeMayHold(*n, spec.model)) continue;
    const size_t slots = n->resources.gpus.size() + n->resources.cpu_actors;
    if (alive_on_node[n->id] < slots) return std::nullopt;  // may yet start a new-enough actor
  }
  std::string seen;
  for (uint8_t v : versions) {
    if (!seen.empty()) seen += ", ";
    seen += std::to_string(wire::kProtocolVersionMajor) + "." + std::to_string(v);
  }
  const std::string fields = wire::FieldsNewerThan(spec, *versions.rbegin());
  const bool one = fields.find(", ") == std::string::npos;
  return fields + (one ? " is" : " are") + " unknown to every alive actor" +
         (spec.model.empty() ? std::string() : " of model '" + spec.model + "'") + " (protocol " + seen +
         "): an older actor would drop " + (one ? "it" : "them") +
         " and render another image; upgrade the actors (distri-worker) to protocol " +
         std::to_string(wire::kProtocolVersionMajor) + "." + std::to_string(needed) + " or later";
}

}  // namespace distri::head
