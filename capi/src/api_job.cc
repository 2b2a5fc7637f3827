// distri_job_*: submit (one or a batch), status, wait with progress, cancel, result
// (previews: previews.cc).
#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

#include "capi/include/distri/distri.h"
#include "capi/src/errors.h"
#include "capi/src/handles.h"
#include "capi/src/params.h"
#include "capi/src/previews.h"
#include "runtime/common/png.h"
#include "runtime/wire/limits.h"

namespace distri::capi {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxBatch = 65536;

Status ToWantedFormat(const distri_job_t* job, wire::JobResult* r);

// `spec` is null for a job from distri_job_open.
distri_job_t* NewJob(const std::shared_ptr<ClientState>& client, const JobId& id, uint64_t seed,
                     const distri_job_params_t* params, const wire::JobSpec* spec) {
  auto* job = new distri_job;
  job->client = client;
  job->id = id;
  job->id_hex = id.Hex();
  job->seed = seed;
  if (params != nullptr && params->struct_size >= kJobParamsV1Size) {
    job->want_format = params->output_format;
    job->progress = params->progress;
    job->progress_user_data = params->progress_user_data;
  }
  if (spec != nullptr) {
    job->preview_every = spec->preview_every;
    job->wait_fetches_previews = spec->preview_every > 0;
  }
  Jobs().Add(job);
  return job;
}

void DeleteJob(distri_job_t* job) {
  if (Jobs().Remove(job)) delete job;
}

// The cluster always renders PNG: lossless, several times smaller than raw RGB on the wire,
// and what every actor produces; DISTRI_OUTPUT_RGB8 is decoded here (ToWantedFormat).
Result<distri_job_t*> Submit(const std::shared_ptr<ClientState>& client, wire::JobSpec spec,
                             const distri_job_params_t* params) {
  spec.output_format = wire::OutputFormat::kPng;
  DISTRI_ASSIGN_OR_RETURN(wire::JobAccepted accepted, client->With([&](Backend& b) { return b.Submit(spec); }));
  return NewJob(client, accepted.job_id, accepted.seed, params, &spec);
}

// The whole batch in one Backend::SubmitBatch call, so the head queues all of it before it
// schedules any (auto gang sizes then see the real queue). The backend cancels what it got
// accepted on an error; the error names the refused spec as params[i].
Result<std::vector<distri_job_t*>> SubmitBatch(const std::shared_ptr<ClientState>& client,
                                               std::vector<wire::JobSpec> specs,
                                               const distri_job_params_t* const* params) {
  for (wire::JobSpec& spec : specs) spec.output_format = wire::OutputFormat::kPng;
  std::vector<distri_job_t*> jobs;
  jobs.reserve(specs.size());
  std::optional<size_t> refused;
  Result<std::vector<wire::JobAccepted>> accepted =
      client->With([&](Backend& b) { return b.SubmitBatch(specs, &refused); });
  if (!accepted.ok()) {
    if (refused && *refused < specs.size()) {
      return accepted.status().WithContext("params[" + std::to_string(*refused) + "]");
    }
    return accepted.status().WithContext("a batch of " + std::to_string(specs.size()) + " job(s)");
  }
  if (accepted->size() != specs.size()) {
    for (const wire::JobAccepted& a : *accepted) {
      (void)client->With([&](Backend& b) { return b.Cancel(a.job_id); });
    }
    return Status::Internal("the cluster answered a batch of " + std::to_string(specs.size()) + " jobs with " +
                            std::to_string(accepted->size()) + " accepted jobs (cancelled them)");
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    jobs.push_back(NewJob(client, (*accepted)[i].job_id, (*accepted)[i].seed, params[i], &specs[i]));
  }
  return jobs;
}

// Records what a status reply tells about the job and fills the C struct.
distri_job_status_t ToCStatus(distri_job_t* job, const wire::JobStatus& s) {
  distri_job_status_t out;
  distri_job_status_init(&out);
  out.state = static_cast<int32_t>(s.state);
  out.step = s.step;
  out.total_steps = s.total_steps;
  out.attempt = s.attempt;
  out.queue_position = s.queue_position;
  std::lock_guard<std::mutex> lock(job->mu);
  if (wire::IsTerminal(s.state) && !job->terminal) {
    job->terminal = true;
    job->error = s.state == wire::JobState::kFailed ? s.error : std::string();
  }
  out.seed = job->seed;
  // Stable pointer: `error` is written once, when the job is first seen terminal.
  out.error = job->terminal ? job->error.c_str() : "";
  return out;
}

// with_preview: also receive the job's newest preview and keep it for distri_job_get_preview.
Result<distri_job_status_t> GetStatus(distri_job_t* job, bool with_preview = false) {
  DISTRI_ASSIGN_OR_RETURN(wire::JobStatus s,
                          job->client->With([&](Backend& b) { return b.GetJob(job->id, with_preview); }));
  if (with_preview) RememberPreview(job, s);
  return ToCStatus(job, s);
}

Status Cancel(distri_job_t* job) {
  DISTRI_ASSIGN_OR_RETURN(wire::JobStatus s, job->client->With([&](Backend& b) { return b.Cancel(job->id); }));
  ToCStatus(job, s);
  {
    std::lock_guard<std::mutex> lock(job->mu);
    ++job->cancel_requests;
  }
  job->cancelled.notify_all();
  return Status::Ok();
}

bool IsTerminal(int32_t state) {
  return state == DISTRI_JOB_SUCCEEDED || state == DISTRI_JOB_FAILED || state == DISTRI_JOB_CANCELLED;
}

// Polls the head: quickly at first (short jobs), backing off to 100 ms; a cancel request
// from another thread wakes the loop at once. `*last` gets the last status seen, also when
// the deadline passes.
Status Wait(distri_job_t* job, int64_t timeout_ms, distri_job_status_t* last) {
  const bool forever = timeout_ms < 0;
  const auto deadline = Clock::now() + std::chrono::milliseconds(forever ? 0 : timeout_ms);
  auto interval = std::chrono::milliseconds(5);
  uint32_t last_step = UINT32_MAX;
  bool callback_cancelled = false;
  for (;;) {
    DISTRI_ASSIGN_OR_RETURN(distri_job_status_t st, GetStatus(job, job->wait_fetches_previews));
    *last = st;
    if (job->progress != nullptr && st.step != last_step && !callback_cancelled && st.total_steps > 0) {
      last_step = st.step;
      interval = std::chrono::milliseconds(5);
      if (job->progress(job->progress_user_data, st.step, st.total_steps) != 0 && !IsTerminal(st.state)) {
        callback_cancelled = true;
        DISTRI_RETURN_IF_ERROR(Cancel(job));
        continue;
      }
    }
    if (IsTerminal(st.state)) return Status::Ok();
    auto now = Clock::now();
    if (!forever && now >= deadline) {
      return Status::DeadlineExceeded("job " + job->id_hex + " is " + distri_job_state_name(st.state) + " (step " +
                                      std::to_string(st.step) + " of " + std::to_string(st.total_steps) + ") after " +
                                      std::to_string(timeout_ms) + " ms");
    }
    auto sleep = forever ? interval : std::min<Clock::duration>(interval, deadline - now);
    std::unique_lock<std::mutex> lock(job->mu);
    uint64_t seen = job->cancel_requests;
    job->cancelled.wait_for(lock, sleep, [&] { return job->cancel_requests != seen; });
    interval = std::min(interval * 2, std::chrono::milliseconds(100));
  }
}

Status GetResult(distri_job_t* job, distri_buffer_t** out_image, distri_image_info_t* out_info) {
  DISTRI_ASSIGN_OR_RETURN(distri_job_status_t st, GetStatus(job));
  switch (st.state) {
    case DISTRI_JOB_SUCCEEDED: break;
    case DISTRI_JOB_CANCELLED: return Status::Cancelled("job " + job->id_hex + " was cancelled");
    case DISTRI_JOB_FAILED: return Status::Aborted("job " + job->id_hex + " failed: " + st.error);
    default:
      return Status::FailedPrecondition("job " + job->id_hex + " is " + distri_job_state_name(st.state) +
                                        ", not SUCCEEDED: wait for it first (distri_job_wait)");
  }
  DISTRI_ASSIGN_OR_RETURN(wire::JobResult r, job->client->With([&](Backend& b) { return b.GetResult(job->id); }));
  DISTRI_RETURN_IF_ERROR(ToWantedFormat(job, &r));
  if (r.format == wire::OutputFormat::kRgb8 && r.image.size() != uint64_t{r.width} * r.height * 3) {
    return Status::Internal("job " + job->id_hex + ": rgb8 result of " + std::to_string(r.width) + "x" +
                            std::to_string(r.height) + " has " + std::to_string(r.image.size()) + " bytes");
  }
  distri_image_info_t info;
  distri_image_info_init(&info);
  info.format = static_cast<int32_t>(r.format);
  info.width = r.width;
  info.height = r.height;
  info.stride = r.format == wire::OutputFormat::kRgb8 ? r.width * 3 : 0;
  info.seed = r.seed;
  info.attempt = r.attempt;
  info.gang_size = static_cast<uint32_t>(r.gang.size());
  info.queued_ms = r.timings.queued_ms;
  info.run_ms = r.timings.run_ms;
  info.total_ms = r.timings.total_ms;
  {
    std::lock_guard<std::mutex> lock(job->mu);
    job->seed = r.seed;
  }
  WriteOutput(out_info, info);
  *out_image = NewBuffer(std::move(r.image));
  return Status::Ok();
}

// Converts the cluster's image into the format the caller asked for.
Status ToWantedFormat(const distri_job_t* job, wire::JobResult* r) {
  if (job->want_format == DISTRI_OUTPUT_RGB8 && r->format == wire::OutputFormat::kPng) {
    auto image = DecodePng(r->image);
    if (!image.ok()) return image.status().WithContext("job " + job->id_hex + ": result image");
    if (uint32_t(image->width) != r->width || uint32_t(image->height) != r->height) {
      return Status::Internal("job " + job->id_hex + ": the result PNG is " + std::to_string(image->width) + "x" +
                              std::to_string(image->height) + ", the cluster said " + std::to_string(r->width) + "x" +
                              std::to_string(r->height));
    }
    r->image.assign(image->pixels.begin(), image->pixels.end());
    r->format = wire::OutputFormat::kRgb8;
  } else if (job->want_format == DISTRI_OUTPUT_PNG && r->format == wire::OutputFormat::kRgb8) {
    RgbImage image;
    image.width = static_cast<int>(r->width);
    image.height = static_cast<int>(r->height);
    image.pixels.assign(r->image.begin(), r->image.end());
    DISTRI_ASSIGN_OR_RETURN(r->image, EncodePng(image));
    r->format = wire::OutputFormat::kPng;
  }
  return Status::Ok();
}

Status CheckJobCall(const distri_job_t* job) { return CheckHandle(job, "job"); }

}  // namespace
}  // namespace distri::capi

using namespace distri::capi;  // NOLINT: this file implements the C entry points
using distri::Result;
using distri::Status;

extern "C" {

distri_status_t distri_job_submit(distri_client_t* client, const distri_job_params_t* params, distri_job_t** out_job) {
  return Guard("distri_job_submit", [&]() -> Status {
    if (out_job == nullptr) return Status::InvalidArgument("out_job is NULL");
    *out_job = nullptr;
    DISTRI_RETURN_IF_ERROR(CheckHandle(client, "client"));
    DISTRI_ASSIGN_OR_RETURN(distri::wire::JobSpec spec, JobSpecFromParams(params));
    DISTRI_ASSIGN_OR_RETURN(*out_job, Submit(client->state, spec, params));
    return Status::Ok();
  });
}

distri_status_t distri_job_submit_batch(distri_client_t* client, const distri_job_params_t* const* params,
                                        size_t count, distri_job_t** out_jobs) {
  return Guard("distri_job_submit_batch", [&]() -> Status {
    if (out_jobs == nullptr) return Status::InvalidArgument("out_jobs is NULL");
    if (count == 0 || count > kMaxBatch) {
      return Status::InvalidArgument("count: must be 1.." + std::to_string(kMaxBatch) + ", got " + std::to_string(count));
    }
    for (size_t i = 0; i < count; ++i) out_jobs[i] = nullptr;
    DISTRI_RETURN_IF_ERROR(CheckHandle(client, "client"));
    if (params == nullptr) return Status::InvalidArgument("params is NULL");
    std::vector<distri::wire::JobSpec> specs;
    specs.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      auto spec = JobSpecFromParams(params[i]);
      if (!spec.ok()) return spec.status().WithContext("params[" + std::to_string(i) + "]");
      specs.push_back(std::move(*spec));
    }
    DISTRI_ASSIGN_OR_RETURN(std::vector<distri_job_t*> jobs, SubmitBatch(client->state, std::move(specs), params));
    for (size_t i = 0; i < count; ++i) out_jobs[i] = jobs[i];
    return Status::Ok();
  });
}

distri_status_t distri_job_open(distri_client_t* client, const char* job_id, distri_job_t** out_job) {
  return Guard("distri_job_open", [&]() -> Status {
    if (out_job == nullptr) return Status::InvalidArgument("out_job is NULL");
    *out_job = nullptr;
    DISTRI_RETURN_IF_ERROR(CheckHandle(client, "client"));
    DISTRI_ASSIGN_OR_RETURN(std::string hex, ReadString("job_id", job_id, 64, false));
    DISTRI_ASSIGN_OR_RETURN(distri::JobId id, distri::JobId::ParseHex(hex));
    auto state = client->state;
    DISTRI_ASSIGN_OR_RETURN(distri::wire::JobStatus s, state->With([&](Backend& b) { return b.GetJob(id, false); }));
    (void)s;
    *out_job = NewJob(state, id, 0, nullptr, nullptr);
    return Status::Ok();
  });
}

void distri_job_destroy(distri_job_t* job) {
  GuardValue("distri_job_destroy", 0, [&] {
    if (job != nullptr) DeleteJob(job);
    return 0;
  });
}

const char* distri_job_id(const distri_job_t* job) {
  if (job == nullptr || !Jobs().Contains(job)) return nullptr;
  return job->id_hex.c_str();
}

distri_status_t distri_job_get_status(distri_job_t* job, distri_job_status_t* out_status) {
  return Guard("distri_job_get_status", [&]() -> Status {
    DISTRI_RETURN_IF_ERROR(CheckJobCall(job));
    if (out_status == nullptr) return Status::InvalidArgument("out_status is NULL");
    DISTRI_RETURN_IF_ERROR(CheckOutput("distri_job_status_t", out_status, kJobStatusV1Size));
    DISTRI_ASSIGN_OR_RETURN(distri_job_status_t st, GetStatus(job));
    WriteOutput(out_status, st);
    return Status::Ok();
  });
}

distri_status_t distri_job_wait(distri_job_t* job, int64_t timeout_ms, distri_job_status_t* out_status) {
  return Guard("distri_job_wait", [&]() -> Status {
    DISTRI_RETURN_IF_ERROR(CheckJobCall(job));
    DISTRI_RETURN_IF_ERROR(CheckOutput("distri_job_status_t", out_status, kJobStatusV1Size));
    distri_job_status_t st;
    distri_job_status_init(&st);
    Status s = Wait(job, timeout_ms, &st);
    if (s.ok() || s.code() == distri::StatusCode::kDeadlineExceeded) WriteOutput(out_status, st);
    return s;
  });
}

distri_status_t distri_job_cancel(distri_job_t* job) {
  return Guard("distri_job_cancel", [&]() -> Status {
    DISTRI_RETURN_IF_ERROR(CheckJobCall(job));
    return Cancel(job);
  });
}

distri_status_t distri_job_get_result(distri_job_t* job, distri_buffer_t** out_image, distri_image_info_t* out_info) {
  return Guard("distri_job_get_result", [&]() -> Status {
    if (out_image == nullptr) return Status::InvalidArgument("out_image is NULL");
    *out_image = nullptr;
    DISTRI_RETURN_IF_ERROR(CheckJobCall(job));
    DISTRI_RETURN_IF_ERROR(CheckOutput("distri_image_info_t", out_info, kImageInfoV1Size));
    return GetResult(job, out_image, out_info);
  });
}

distri_status_t distri_client_generate(distri_client_t* client, const distri_job_params_t* params, int64_t timeout_ms,
                                       distri_buffer_t** out_image, distri_image_info_t* out_info) {
  return Guard("distri_client_generate", [&]() -> Status {
    if (out_image == nullptr) return Status::InvalidArgument("out_image is NULL");
    *out_image = nullptr;
    DISTRI_RETURN_IF_ERROR(CheckHandle(client, "client"));
    DISTRI_RETURN_IF_ERROR(CheckOutput("distri_image_info_t", out_info, kImageInfoV1Size));
    DISTRI_ASSIGN_OR_RETURN(distri::wire::JobSpec spec, JobSpecFromParams(params));
    DISTRI_ASSIGN_OR_RETURN(distri_job_t* job, Submit(client->state, spec, params));
    job->wait_fetches_previews = false;  // nobody can ask this job for its preview
    struct Release {
      distri_job_t* j;
      ~Release() { DeleteJob(j); }
    } release{job};
    distri_job_status_t st;
    distri_job_status_init(&st);
    Status s = Wait(job, timeout_ms, &st);
    if (!s.ok()) {
      if (s.code() == distri::StatusCode::kDeadlineExceeded) (void)Cancel(job);
      return s;
    }
    return GetResult(job, out_image, out_info);
  });
}

}  // extern "C"
