#include "runtime/wire/field_versions.h"

#include <algorithm>

#include "runtime/wire/message_type.h"

namespace distri::wire {

std::vector<VersionedField> VersionedFieldsUsed(const JobSpec& spec) {
  std::vector<VersionedField> used;
  if (!spec.sync_mode.empty()) used.push_back({"sync_mode", 2});
  if (spec.warmup_steps.has_value()) used.push_back({"warmup_steps", 2});
  if (spec.preview_every != 0) used.push_back({"preview_every", 3});
  if (spec.guidance_rescale != 0) used.push_back({"guidance_rescale", 4});
  return used;
}

uint8_t MinorVersionNeeded(const JobSpec& spec) {
  uint8_t needed = 0;
  for (const VersionedField& f : VersionedFieldsUsed(spec)) needed = std::max(needed, f.minor);
  return needed;
}

std::string FieldsNewerThan(const JobSpec& spec, uint8_t peer_minor) {
  std::string out;
  for (const VersionedField& f : VersionedFieldsUsed(spec)) {
    if (f.minor <= peer_minor) continue;
    if (!out.empty()) out += ", ";
    out += std::string(f.name) + " (since " + std::to_string(kProtocolVersionMajor) + "." + std::to_string(f.minor) +
           ")";
  }
  return out;
}

Status CheckPeerKnowsFields(const JobSpec& spec, uint8_t peer_minor, std::string_view peer) {
  const std::string fields = FieldsNewerThan(spec, peer_minor);
  if (fields.empty()) return Status::Ok();
  const bool one = fields.find(", ") == std::string::npos;
  return Status::FailedPrecondition(fields + (one ? " is" : " are") + " unknown to " + std::string(peer) +
                                    ", which speaks protocol " + std::to_string(kProtocolVersionMajor) + "." +
                                    std::to_string(peer_minor) + ": it would drop " + (one ? "it" : "them") +
                                    " and render another image; upgrade it");
}

}  // namespace distri::wire
