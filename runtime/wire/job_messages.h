// Messages between a client and the head: submit, query, cancel, fetch the image.
// (Conventions: node_messages.h.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/ids.h"
#include "runtime/common/status.h"
#include "runtime/wire/message_type.h"
#include "runtime/wire/types.h"

namespace distri::wire {

// client -> head: render one image. Answered by JobAccepted (after the job is durable) or
// Error (InvalidArgument for a job the cluster cannot run).
struct SubmitJob {
  static constexpr MessageType kType = MessageType::kSubmitJob;
  JobSpec spec;  // the job's fields, at the top level of the payload map (see JobSpec)
  bool operator==(const SubmitJob&) const = default;
};

// head -> client, reply to SubmitJob.
struct JobAccepted {
  static constexpr MessageType kType = MessageType::kJobAccepted;
  JobId job_id;                 // required; the new job
  uint64_t seed = 0;            // required; the seed the job will use (drawn if not given)
  uint32_t queue_position = 0;  // required; jobs ahead of it when accepted (0 = next)
  bool operator==(const JobAccepted&) const = default;
};

// client -> head: render a batch of images (minor version 5). The head validates every spec as
// it validates SubmitJob's, records all of them durably in one transaction and queues them in
// order before it schedules, so the gang sizes it picks for "auto" jobs see the whole batch
// queued. All or nothing: one invalid spec refuses the batch (Error InvalidArgument naming
// "jobs[i]" and the field) and no job of it is recorded. Answered by JobsAccepted or Error;
// a head older than minor version 5 answers Error InvalidArgument "unknown message type 17"
// with request id 0 (client::Client::SubmitBatch then submits one SubmitJob per spec).
struct SubmitJobs {
  static constexpr MessageType kType = MessageType::kSubmitJobs;
  std::vector<JobSpec> jobs;  // required; 1..kMaxBatchJobs, each checked as SubmitJob's fields
  bool operator==(const SubmitJobs&) const = default;
};

// head -> client, reply to SubmitJobs: one entry per spec, in the order of SubmitJobs.jobs.
struct JobsAccepted {
  static constexpr MessageType kType = MessageType::kJobsAccepted;
  std::vector<JobAccepted> jobs;  // required; 1..kMaxBatchJobs; queue_position as of the whole batch queued
  bool operator==(const JobsAccepted&) const = default;
};

// client -> head: state of a job. Answered by JobStatus, or Error NotFound.
struct GetJob {
  static constexpr MessageType kType = MessageType::kGetJob;
  JobId job_id;              // required
  bool with_preview = false; // optional; true: JobStatus carries the job's latest preview
  bool operator==(const GetJob&) const = default;
};

// head -> client: reply to GetJob and CancelJob.
struct JobStatus {
  static constexpr MessageType kType = MessageType::kJobStatus;
  JobId job_id;                        // required
  JobState state = JobState::kPending; // required
  uint32_t step = 0;                   // required; denoising steps done (0..total_steps)
  uint32_t total_steps = 0;            // required; steps of the job
  uint32_t attempt = 0;                // optional; 0 for the first run, +1 per re-run after a failure
  uint32_t queue_position = 0;         // optional; jobs ahead of it while PENDING
  std::string error;                   // optional; why, when FAILED (<= kMaxErrorMessageBytes)
  // Optional; only when GetJob.with_preview asked for it: the latest latent preview (PNG)
  // rank 0 reported for the running attempt, empty when none yet (<= kMaxPreviewBytes).
  std::string preview;
  uint32_t preview_step = 0;           // optional; the step `preview` was taken after (0 = none)
  bool operator==(const JobStatus&) const = default;
};

// client -> head: cancel a job. Answered by JobStatus (CANCELLED, or the terminal state it
// had already reached), or Error NotFound.
struct CancelJob {
  static constexpr MessageType kType = MessageType::kCancelJob;
  JobId job_id;  // required
  bool operator==(const CancelJob&) const = default;
};

// client -> head: the image of a SUCCEEDED job. Answered by JobResult, or Error
// (NotFound; FailedPrecondition when the job has not succeeded).
struct GetJobResult {
  static constexpr MessageType kType = MessageType::kGetJobResult;
  JobId job_id;  // required
  bool operator==(const GetJobResult&) const = default;
};

// head -> client: the image and how it was made.
struct JobResult {
  static constexpr MessageType kType = MessageType::kJobResult;
  JobId job_id;                                // required
  OutputFormat format = OutputFormat::kPng;    // required; encoding of `image`
  std::string image;                           // required; the bytes (<= kMaxImageBytes)
  uint32_t width = 0;                          // required; pixels
  uint32_t height = 0;                         // required; pixels
  uint64_t seed = 0;                           // required; the seed used
  JobTimings timings;                          // required
  std::vector<GangMember> gang;                // required; the gang of the successful attempt
  uint32_t attempt = 0;                        // optional; which attempt produced it
  bool operator==(const JobResult&) const = default;
};

Result<std::string> EncodePayload(const SubmitJob& m);
Result<std::string> EncodePayload(const JobAccepted& m);
Result<std::string> EncodePayload(const GetJob& m);
Result<std::string> EncodePayload(const JobStatus& m);
Result<std::string> EncodePayload(const CancelJob& m);
Result<std::string> EncodePayload(const GetJobResult& m);
Result<std::string> EncodePayload(const JobResult& m);
Result<std::string> EncodePayload(const SubmitJobs& m);
Result<std::string> EncodePayload(const JobsAccepted& m);
Status DecodePayload(std::string_view bytes, SubmitJob* out);
Status DecodePayload(std::string_view bytes, JobAccepted* out);
Status DecodePayload(std::string_view bytes, GetJob* out);
Status DecodePayload(std::string_view bytes, JobStatus* out);
Status DecodePayload(std::string_view bytes, CancelJob* out);
Status DecodePayload(std::string_view bytes, GetJobResult* out);
Status DecodePayload(std::string_view bytes, JobResult* out);
Status DecodePayload(std::string_view bytes, SubmitJobs* out);
Status DecodePayload(std::string_view bytes, JobsAccepted* out);

}  // namespace distri::wire
