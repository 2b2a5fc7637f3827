#include "runtime/wire/job_messages.h"

#include "runtime/wire/schema.h"

namespace distri::wire {
namespace internal {

// SubmitJob's fields are JobSpec's, at the top level of its map.
template <typename V, Is<SubmitJob> M>
void Fields(V& v, M& m) {
  Fields(v, m.spec);
}

template <typename V, Is<JobAccepted> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
  v.Int("seed", m.seed, kRequired, uint64_t{0}, std::numeric_limits<uint64_t>::max());
  v.Int("queue_position", m.queue_position, kRequired, 0u, std::numeric_limits<uint32_t>::max());
}

template <typename V, Is<SubmitJobs> M>
void Fields(V& v, M& m) {
  v.StructList("jobs", m.jobs, kRequired, kMaxBatchJobs);
}

template <typename V, Is<JobsAccepted> M>
void Fields(V& v, M& m) {
  v.StructList("jobs", m.jobs, kRequired, kMaxBatchJobs);
}

template <typename V, Is<GetJob> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
  v.Bool("with_preview", m.with_preview, kOptional);
}

template <typename V, Is<JobStatus> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
  v.Enum("state", m.state, kRequired, JobState::kCancelled);
  v.Int("step", m.step, kRequired, 0u, kMaxSteps);
  v.Int("total_steps", m.total_steps, kRequired, 0u, kMaxSteps);
  v.Int("attempt", m.attempt, kOptional, 0u, std::numeric_limits<uint32_t>::max());
  v.Int("queue_position", m.queue_position, kOptional, 0u, std::numeric_limits<uint32_t>::max());
  v.Str("error", m.error, kOptional, kMaxErrorMessageBytes);
  v.Bytes("preview", m.preview, kOptional, kMaxPreviewBytes);
  v.Int("preview_step", m.preview_step, kOptional, 0u, kMaxSteps);
}

template <typename V, Is<CancelJob> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
}

template <typename V, Is<GetJobResult> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
}

template <typename V, Is<JobResult> M>
void Fields(V& v, M& m) {
  v.Id("job_id", m.job_id, kRequired);
  v.Enum("format", m.format, kRequired, OutputFormat::kRgb8);
  v.Bytes("image", m.image, kRequired, kMaxImageBytes);
  v.Int("width", m.width, kRequired, 1u, kMaxImageSide);
  v.Int("height", m.height, kRequired, 1u, kMaxImageSide);
  v.Int("seed", m.seed, kRequired, uint64_t{0}, std::numeric_limits<uint64_t>::max());
  v.Struct("timings", m.timings, kRequired);
  v.StructList("gang", m.gang, kRequired, kMaxGangSize);
  v.Int("attempt", m.attempt, kOptional, 0u, std::numeric_limits<uint32_t>::max());
}

template <>
struct Invariants<JobStatus> {
  static Status Check(const JobStatus& m, const std::string& name) {
    if (m.step > m.total_steps) {
      return Status::InvalidArgument(name + ": step " + std::to_string(m.step) + " is past total_steps " +
                                     std::to_string(m.total_steps));
    }
    if (m.preview_step > m.total_steps) {
      return Status::InvalidArgument(name + ": preview_step " + std::to_string(m.preview_step) +
                                     " is past total_steps " + std::to_string(m.total_steps));
    }
    return Status::Ok();
  }
};

template <>
struct Invariants<JobResult> {
  static Status Check(const JobResult& m, const std::string& name) {
    if (m.format == OutputFormat::kRgb8 &&
        m.image.size() != uint64_t{m.width} * m.height * 3) {
      return Status::InvalidArgument(name + ": rgb8 image of " + std::to_string(m.width) + "x" +
                                     std::to_string(m.height) + " needs " +
                                     std::to_string(uint64_t{m.width} * m.height * 3) + " bytes, found " +
                                     std::to_string(m.image.size()));
    }
    return Status::Ok();
  }
};

// A batch is the one list longer than a gang: its parse may hold kMaxBatchJobs entries (the
// object count and the envelope size stay bounded as for every message).
template <>
struct PayloadLimitsOf<SubmitJobs> {
  static const ParseLimits& Get() { return BatchPayloadLimits(); }
};
template <>
struct PayloadLimitsOf<JobsAccepted> {
  static const ParseLimits& Get() { return BatchPayloadLimits(); }
};

template <>
struct Invariants<SubmitJobs> {
  static Status Check(const SubmitJobs& m, const std::string& name) {
    if (m.jobs.empty()) return Status::InvalidArgument(name + ".jobs: empty (a batch holds 1.." +
                                                       std::to_string(kMaxBatchJobs) + " jobs)");
    return Status::Ok();
  }
};

template <>
struct Invariants<JobsAccepted> {
  static Status Check(const JobsAccepted& m, const std::string& name) {
    if (m.jobs.empty()) return Status::InvalidArgument(name + ".jobs: empty");
    return Status::Ok();
  }
};

}  // namespace internal

DISTRI_WIRE_DEFINE_CODEC(SubmitJob)
DISTRI_WIRE_DEFINE_CODEC(JobAccepted)
DISTRI_WIRE_DEFINE_CODEC(GetJob)
DISTRI_WIRE_DEFINE_CODEC(JobStatus)
DISTRI_WIRE_DEFINE_CODEC(CancelJob)
DISTRI_WIRE_DEFINE_CODEC(GetJobResult)
DISTRI_WIRE_DEFINE_CODEC(JobResult)
DISTRI_WIRE_DEFINE_CODEC(SubmitJobs)
DISTRI_WIRE_DEFINE_CODEC(JobsAccepted)

}  // namespace distri::wire
