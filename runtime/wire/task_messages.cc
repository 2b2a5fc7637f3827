#include "runtime/wire/task_messages.h"

#include <algorithm>

#include "runtime/wire/schema.h"

namespace distri::wire {
namespace internal {

template <typename V, Is<AssignTask> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
  v.Int("attempt", m.attempt, kRequired, 0u, std::numeric_limits<uint32_t>::max());
  v.Id("gang_id", m.gang_id, kRequired);
  v.Int("rank", m.rank, kRequired, size_t{0}, kMaxGangSize - 1);
  v.StructList("gang", m.gang, kRequired, kMaxGangSize);
  v.Struct("job", m.job, kRequired);
  v.Str("channel_backend", m.channel_backend, kRequired, kMaxNameBytes, 1);
  v.Bytes("rendezvous", m.rendezvous, kRequired, kMaxRendezvousBytes);
}

template <typename V, Is<TaskProgress> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
  v.Int("attempt", m.attempt, kRequired, 0u, std::numeric_limits<uint32_t>::max());
  v.Int("rank", m.rank, kRequired, size_t{0}, kMaxGangSize - 1);
  v.Int("step", m.step, kRequired, 0u, kMaxSteps);
  v.Int("total_steps", m.total_steps, kRequired, 1u, kMaxSteps);
  v.Bytes("preview", m.preview, kOptional, kMaxPreviewBytes);
}

template <typename V, Is<TaskDone> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
  v.Int("attempt", m.attempt, kRequired, 0u, std::numeric_limits<uint32_t>::max());
  v.Int("rank", m.rank, kRequired, size_t{0}, kMaxGangSize - 1);
  v.Int("error_code", m.error_code, kRequired, std::numeric_limits<int32_t>::min(),
        std::numeric_limits<int32_t>::max());
  v.Str("error_message", m.error_message, kOptional, kMaxErrorMessageBytes);
  v.Enum("format", m.format, kOptional, OutputFormat::kRgb8);
  v.Bytes("image", m.image, kOptional, kMaxImageBytes);
  v.Int("width", m.width, kOptional, 0u, kMaxImageSide);
  v.Int("height", m.height, kOptional, 0u, kMaxImageSide);
  v.Double("denoise_ms", m.denoise_ms, kOptional);
  v.Double("decode_ms", m.decode_ms, kOptional);
}

template <typename V, Is<Error> M>
void Fields(V& v, M& m) {
  v.Int("code", m.code, kRequired, 1, std::numeric_limits<int32_t>::max());
  v.Str("message", m.message, kRequired, kMaxErrorMessageBytes);
}

template <>
struct Invariants<AssignTask> {
  static Status Check(const AssignTask& m, const std::string& name) {
    if (m.gang.empty()) return Status::InvalidArgument(name + ".gang: empty (a gang has at least one rank)");
    for (size_t i = 0; i < m.gang.size(); ++i) {
      if (m.gang[i].rank != i) {
        return Status::InvalidArgument(name + ".gang[" + std::to_string(i) + "].rank: expected " +
                                       std::to_string(i) + " (members in rank order), found " +
                                       std::to_string(m.gang[i].rank));
      }
    }
    if (m.rank >= m.gang.size()) {
      return Status::InvalidArgument(name + ".rank: " + std::to_string(m.rank) + " is not in a gang of " +
                                     std::to_string(m.gang.size()));
    }
    if (!m.job.seed.has_value()) {
      return Status::InvalidArgument(name + ".job.seed: missing (a task always carries the job's seed)");
    }
    return Status::Ok();
  }
};

template <>
struct Invariants<TaskProgress> {
  static Status Check(const TaskProgress& m, const std::string& name) {
    if (m.step > m.total_steps) {
      return Status::InvalidArgument(name + ": step " + std::to_string(m.step) + " is past total_steps " +
                                     std::to_string(m.total_steps));
    }
    return Status::Ok();
  }
};

}  // namespace internal

DISTRI_WIRE_DEFINE_CODEC(AssignTask)
DISTRI_WIRE_DEFINE_CODEC(TaskProgress)
DISTRI_WIRE_DEFINE_CODEC(TaskDone)
DISTRI_WIRE_DEFINE_CODEC(Error)

Error Error::FromStatus(const Status& s) {
  Error e;
  // An OK status has no error to carry; say so rather than send code 0 (which decodes as bad).
  e.code = s.ok() ? static_cast<int32_t>(StatusCode::kInternal) : static_cast<int32_t>(s.code());
  e.message = s.ok() ? "Error::FromStatus called with an OK status" : s.message();
  if (!internal::IsValidUtf8(e.message)) {
    for (char& c : e.message) {
      if (static_cast<unsigned char>(c) >= 0x80) c = '?';
    }
  }
  if (e.message.size() > kMaxErrorMessageBytes) {
    size_t cut = kMaxErrorMessageBytes;
    // Do not split a UTF-8 sequence: back up to the start of a character.
    while (cut > 0 && (static_cast<unsigned char>(e.message[cut]) & 0xC0) == 0x80) --cut;
    e.message.resize(cut);
  }
  return e;
}

Status Error::ToStatus() const {
  constexpr int32_t kLastKnown = static_cast<int32_t>(StatusCode::kFailedPrecondition);
  if (code <= 0 || code > kLastKnown) {
    return Status::Internal("unknown status code " + std::to_string(code) + ": " + message);
  }
  return Status(static_cast<StatusCode>(code), message);
}

}  // namespace distri::wire
