// Which protocol minor version each optional JobSpec field needs.
//
// A field added in a later minor version is optional on the wire, and a decoder ignores keys
// it does not know (schema.h), so a peer of an older minor version silently DROPS it: a
// minor-3 actor handed guidance_rescale = 0.7 renders without it, a minor-1 head handed
// sync_mode stores the job without it, and the user gets another image with no error. A
// sender therefore must never hand a job using such a field to a peer that announced (in its
// envelopes, envelope.h) an older minor version: the head places such a job only on actors
// new enough (head::GangScheduler), the client refuses to send it to an older head
// (client::Client::Submit). docs/runtime-design.md, "Peers of older minor versions".
//
// Every JobSpec field added after minor version 1 is listed here (field_versions_test.cc
// fails when a new one is not); a new one is added here with the minor version that added it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/wire/types.h"

namespace distri::wire {

// One versioned field a spec uses: its wire name and the minor version that added it.
struct VersionedField {
  std::string_view name;  // "guidance_rescale"
  uint8_t minor = 0;      // 4
  bool operator==(const VersionedField&) const = default;
};

// The versioned fields `spec` sets to something other than their "absent" value, in the order
// of JobSpec: sync_mode (non-empty) and warmup_steps (set) since 2, preview_every (non-zero)
// since 3, guidance_rescale (non-zero) since 4. Fields at their absent value need nothing:
// an older peer's default is the same.
std::vector<VersionedField> VersionedFieldsUsed(const JobSpec& spec);

// The lowest minor version a peer must speak to take `spec` without dropping anything: the
// largest minor of VersionedFieldsUsed, 0 when it uses none.
uint8_t MinorVersionNeeded(const JobSpec& spec);

// The fields of `spec` that a peer of minor version `peer_minor` does not know, in the order
// of JobSpec ("" when none), as "guidance_rescale (since 1.4)" joined by ", ".
std::string FieldsNewerThan(const JobSpec& spec, uint8_t peer_minor);

// Ok when a peer of minor version `peer_minor` knows every field `spec` uses; else
// FailedPrecondition naming the fields, the versions and `peer` ("the head at tcp://..."):
// "guidance_rescale (since 1.4) is unknown to the head at tcp://h:7070, which speaks protocol
// 1.3: it would drop it and render another image; upgrade it".
Status CheckPeerKnowsFields(const JobSpec& spec, uint8_t peer_minor, std::string_view peer);

}  // namespace distri::wire
