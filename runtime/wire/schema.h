// Internal to runtime/wire: the field list ("schema") of each shared value type, written once
// and used by both FieldWriter (encode) and FieldReader (decode), and the payload codec that
// runs it. The field lists of the messages are in node_messages.cc, job_messages.cc,
// task_messages.cc, actor_messages.cc and cluster_messages.cc.
//
// Wire names are snake_case and never change; a new field is optional (old peers omit it, and
// drop it when they receive it: a new JobSpec field gets its minor version in field_versions.h,
// so that nobody hands it to a peer that would drop it).
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include "runtime/wire/limits.h"
#include "runtime/wire/message_type.h"
#include "runtime/wire/msgpack_io.h"
#include "runtime/wire/types.h"

namespace distri::wire::internal {

inline constexpr Presence kRequired = Presence::kRequired;
inline constexpr Presence kOptional = Presence::kOptional;

// M is T or const T (FieldWriter visits const objects, FieldReader mutable ones).
template <typename M, typename T>
concept Is = std::same_as<std::remove_const_t<M>, T>;

template <typename V, Is<GpuInfo> M>
void Fields(V& v, M& m) {
  v.Int("index", m.index, kRequired, 0u, 65535u);
  v.Str("name", m.name, kRequired, kMaxNameBytes);
  v.Int("memory_bytes", m.memory_bytes, kRequired, uint64_t{0}, std::numeric_limits<uint64_t>::max());
}

template <typename V, Is<NodeResources> M>
void Fields(V& v, M& m) {
  v.Str("hostname", m.hostname, kRequired, kMaxNameBytes, 1);
  v.StructList("gpus", m.gpus, kRequired, kMaxGpusPerNode);
  v.Int("cpu_actors", m.cpu_actors, kRequired, 0u, 4096u);
  v.StrList("models", m.models, kOptional, kMaxModelsPerNode, kMaxNameBytes);
}

template <typename V, Is<JobSpec> M>
void Fields(V& v, M& m) {
  v.Str("prompt", m.prompt, kRequired, kMaxPromptBytes);
  v.Str("negative_prompt", m.negative_prompt, kOptional, kMaxPromptBytes);
  v.Int("width", m.width, kRequired, 1u, kMaxImageSide);
  v.Int("height", m.height, kRequired, 1u, kMaxImageSide);
  v.Int("steps", m.steps, kRequired, 1u, kMaxSteps);
  v.Double("guidance", m.guidance, kRequired);
  v.Str("sampler", m.sampler, kRequired, kMaxNameBytes, 1);
  v.OptUint("seed", m.seed);
  v.Int("gpus", m.gpus, kOptional, size_t{0}, kMaxGangSize);
  v.Int("priority", m.priority, kOptional, std::numeric_limits<int32_t>::min(),
        std::numeric_limits<int32_t>::max());
  v.Enum("output_format", m.output_format, kOptional, OutputFormat::kRgb8);
  v.Str("model", m.model, kOptional, kMaxNameBytes);
  v.Str("sync_mode", m.sync_mode, kOptional, kMaxNameBytes);
  v.OptInt("warmup_steps", m.warmup_steps, 0u, kMaxSteps);
  v.Int("preview_every", m.preview_every, kOptional, 0u, kMaxSteps);
  v.Double("guidance_rescale", m.guidance_rescale, kOptional, 0.0, 1.0);
}

template <typename V, Is<GangMember> M>
void Fields(V& v, M& m) {
  v.Int("rank", m.rank, kRequired, size_t{0}, kMaxGangSize - 1);
  v.Id("node_id", m.node_id, kRequired);
  v.Id("actor_id", m.actor_id, kRequired);
  v.Int("gpu_index", m.gpu_index, kRequired, -1, 65535);
  v.Str("hostname", m.hostname, kOptional, kMaxNameBytes);
}

template <typename V, Is<JobTimings> M>
void Fields(V& v, M& m) {
  v.Double("queued_ms", m.queued_ms, kRequired);
  v.Double("run_ms", m.run_ms, kRequired);
  v.Double("total_ms", m.total_ms, kRequired);
  v.Double("denoise_ms", m.denoise_ms, kOptional);
  v.Double("decode_ms", m.decode_ms, kOptional);
}

// Checks across fields that the field list cannot express; specialized per message in the
// .cc that holds its field list. `name` is the message name for errors.
template <typename M>
struct Invariants {
  static Status Check(const M&, const std::string&) { return Status::Ok(); }
};

// Limits of the payload parse: the largest value any field may take (field-level limits are
// then checked per field by FieldReader).
inline const ParseLimits& PayloadLimits() {
  static const ParseLimits limits{
      /*max_array=*/kMaxGangSize,
      /*max_map=*/kMaxMapEntries,
      /*max_str=*/kMaxPromptBytes,
      /*max_bin=*/kMaxImageBytes,
      /*max_ext=*/64 * 1024,
      /*max_depth=*/kMaxNestingDepth,
      /*max_objects=*/size_t{1} << 20,
  };
  return limits;
}

// PayloadLimits with room for a batch's kMaxBatchJobs entries in one array.
inline const ParseLimits& BatchPayloadLimits() {
  static const ParseLimits limits = [] {
    ParseLimits l = PayloadLimits();
    l.max_array = kMaxBatchJobs;
    return l;
  }();
  return limits;
}

// The limits of the payload parse of message M: PayloadLimits(), unless the .cc that holds M's
// field list specializes this (before its DISTRI_WIRE_DEFINE_CODEC).
template <typename M>
struct PayloadLimitsOf {
  static const ParseLimits& Get() { return PayloadLimits(); }
};

template <typename M>
Result<std::string> EncodeFields(const M& m) {
  const std::string name(MessageTypeName(M::kType));
  DISTRI_RETURN_IF_ERROR(Invariants<M>::Check(m, name));
  FieldWriter w(name);
  Fields(w, m);
  DISTRI_RETURN_IF_ERROR(w.status());
  std::string out = w.Finish();
  // Room for the envelope header (prefix + type + request id + sender id).
  if (out.size() > kMaxEnvelopeBytes - 1024) {
    return Status::InvalidArgument(name + ": encoded payload of " + std::to_string(out.size()) +
                                   " bytes does not fit in an envelope");
  }
  return out;
}

template <typename M>
Status DecodeFields(std::string_view bytes, M* out) {
  const std::string name(MessageTypeName(M::kType));
  msgpack::object_handle handle;
  DISTRI_RETURN_IF_ERROR(ParseUntrusted(bytes, PayloadLimitsOf<M>::Get(), name + " payload", &handle));
  FieldReader r(handle.get(), name);
  M m;
  if (r.status().ok()) Fields(r, m);
  DISTRI_RETURN_IF_ERROR(r.status());
  DISTRI_RETURN_IF_ERROR(Invariants<M>::Check(m, name));
  *out = std::move(m);
  return Status::Ok();
}

}  // namespace distri::wire::internal

// Defines the public EncodePayload / DecodePayload of message type T (in a .cc, after T's
// field list and Invariants specialization).
#define DISTRI_WIRE_DEFINE_CODEC(T)                                                        \
  Result<std::string> EncodePayload(const T& m) { return internal::EncodeFields(m); }      \
  Status DecodePayload(std::string_view bytes, T* out) { return internal::DecodeFields(bytes, out); }
