// Messages between the head and the actors of a gang, and the Error reply.
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

// head -> each actor of a gang: run rank `rank` of job `job_id`. Decode checks the gang's
// invariants: 1..kMaxGangSize members, gang[i].rank == i, rank < gang size, job.seed present.
struct AssignTask {
  static constexpr MessageType kType = MessageType::kAssignTask;
  JobId job_id;                  // required
  uint32_t attempt = 0;          // required; 0, then +1 per re-run (progress of older attempts is stale)
  GangId gang_id;                // required; names the channel (one per attempt)
  uint32_t rank = 0;             // required; this actor's rank in `gang`
  std::vector<GangMember> gang;  // required; every rank, in rank order (world size = gang.size())
  JobSpec job;                   // required; the image to render (seed always set)
  std::string channel_backend;   // required; "nccl", "ucx" or "local" (runtime/channel)
  std::string rendezvous;        // required; backend-specific blob, e.g. the NCCL unique id
                                 //   (<= kMaxRendezvousBytes; may be empty for "local")
  bool operator==(const AssignTask&) const = default;
};

// actor -> head, after each denoising step (rank 0 only, or every rank: the head keeps the
// minimum). No reply.
struct TaskProgress {
  static constexpr MessageType kType = MessageType::kTaskProgress;
  JobId job_id;              // required
  uint32_t attempt = 0;      // required
  uint32_t rank = 0;         // required; < kMaxGangSize
  uint32_t step = 0;         // required; steps done, 1..total_steps
  uint32_t total_steps = 0;  // required; 1..kMaxSteps
  std::string preview;       // optional; small PNG of the current latent (<= kMaxPreviewBytes)
  bool operator==(const TaskProgress&) const = default;
};

// actor -> head: the rank finished. On success rank 0 carries the image; other ranks send
// an empty image. On failure error_code is a distri::StatusCode value other than 0.
struct TaskDone {
  static constexpr MessageType kType = MessageType::kTaskDone;
  JobId job_id;                              // required
  uint32_t attempt = 0;                      // required
  uint32_t rank = 0;                         // required; < kMaxGangSize
  int32_t error_code = 0;                    // required; 0 = success, else a StatusCode value
  std::string error_message;                 // optional; <= kMaxErrorMessageBytes
  OutputFormat format = OutputFormat::kPng;  // optional; encoding of `image`
  std::string image;                         // optional; rank 0's image (<= kMaxImageBytes)
  uint32_t width = 0;                        // optional; pixels of `image`
  uint32_t height = 0;                       // optional
  double denoise_ms = 0;                     // optional; time in the denoising loop
  double decode_ms = 0;                      // optional; VAE decode + image encoding (rank 0)
  bool operator==(const TaskDone&) const = default;
};

// Any direction: the request named by the envelope's request id failed (or, with request id
// 0, a message that could not even be parsed).
struct Error {
  static constexpr MessageType kType = MessageType::kError;
  int32_t code = 0;     // required; a distri::StatusCode value (never 0: an Error is never OK)
  std::string message;  // required; what was wrong (<= kMaxErrorMessageBytes)
  bool operator==(const Error&) const = default;

  // Error{s.code(), s.message()}, the message cut to the limit. `s` must not be OK.
  static Error FromStatus(const Status& s);
  // The Status; a code this build does not know becomes Internal ("unknown status code N: ...").
  Status ToStatus() const;
};

Result<std::string> EncodePayload(const AssignTask& m);
Result<std::string> EncodePayload(const TaskProgress& m);
Result<std::string> EncodePayload(const TaskDone& m);
Result<std::string> EncodePayload(const Error& m);
Status DecodePayload(std::string_view bytes, AssignTask* out);
Status DecodePayload(std::string_view bytes, TaskProgress* out);
Status DecodePayload(std::string_view bytes, TaskDone* out);
Status DecodePayload(std::string_view bytes, Error* out);

}  // namespace distri::wire
