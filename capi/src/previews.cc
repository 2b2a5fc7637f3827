// distri_job_get_preview and the preview each job handle keeps (previews.h).
#include "capi/src/previews.h"

#include <cstring>
#include <string>

#include "capi/include/distri/distri.h"
#include "capi/src/errors.h"
#include "capi/src/params.h"

namespace distri::capi {
namespace {

struct PngSize {
  uint32_t width = 0;
  uint32_t height = 0;
};

// Width and height from the IHDR chunk, which a PNG must start with (signature, length,
// "IHDR", width, height: big-endian), without decoding the pixels.
Result<PngSize> ReadPngSize(const std::string& png) {
  static const char kSignature[] = "\x89PNG\r\n\x1a\n";
  if (png.size() < 24 || std::memcmp(png.data(), kSignature, 8) != 0 || png.compare(12, 4, "IHDR") != 0) {
    return Status::Internal("the cluster's preview (" + std::to_string(png.size()) + " bytes) is not a PNG");
  }
  auto be32 = [&](size_t at) {
    const auto* b = reinterpret_cast<const unsigned char*>(png.data()) + at;
    return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | uint32_t{b[3]};
  };
  return PngSize{be32(16), be32(20)};
}

// Why `job` has no preview to return, given the status just received.
std::string NoPreviewMessage(const distri_job_t* job, const wire::JobStatus& s) {
  std::string where = "job " + job->id_hex + " (" + std::string(wire::JobStateName(s.state)) + ", step " +
                      std::to_string(s.step) + " of " + std::to_string(s.total_steps) + ")";
  if (job->preview_every == 0) {
    return where + " was submitted without previews (distri_job_params_t.preview_every = 0)";
  }
  std::string every = job->preview_every > 0 ? std::to_string(job->preview_every) : std::string("?");
  if (wire::IsTerminal(s.state)) {
    return where + " has ended and this handle received no preview of it (preview_every " + every +
           "; the cluster keeps a job's preview only while it runs)";
  }
  return where + " has no preview yet (preview_every " + every + ")";
}

Status GetPreview(distri_job_t* job, distri_buffer_t** out_image, distri_image_info_t* out_info,
                  uint32_t* out_step) {
  const bool ask = job->preview_every != 0;  // -1 (distri_job_open): unknown, ask
  DISTRI_ASSIGN_OR_RETURN(wire::JobStatus s, job->client->With([&](Backend& b) { return b.GetJob(job->id, ask); }));
  RememberPreview(job, s);
  std::string png;
  distri_image_info_t info;
  distri_image_info_init(&info);
  uint32_t step = 0;
  {
    std::lock_guard<std::mutex> lock(job->mu);
    png = job->preview;
    step = job->preview_step;
    info.attempt = job->preview_attempt;
    info.seed = job->seed;
  }
  if (png.empty()) return Status::NotFound(NoPreviewMessage(job, s));
  DISTRI_ASSIGN_OR_RETURN(PngSize size, ReadPngSize(png));
  info.format = DISTRI_OUTPUT_PNG;
  info.width = size.width;
  info.height = size.height;
  WriteOutput(out_info, info);
  *out_step = step;
  *out_image = NewBuffer(std::move(png));
  return Status::Ok();
}

}  // namespace

void RememberPreview(distri_job_t* job, const wire::JobStatus& s) {
  std::lock_guard<std::mutex> lock(job->mu);
  if (s.attempt < job->preview_attempt) return;  // a stale reply
  if (s.attempt > job->preview_attempt) {
    job->preview.clear();
    job->preview_step = 0;
    job->preview_attempt = s.attempt;
  }
  if (!s.preview.empty() && (job->preview.empty() || s.preview_step > job->preview_step)) {
    job->preview = s.preview;
    job->preview_step = s.preview_step;
  }
}

}  // namespace distri::capi

using namespace distri::capi;  // NOLINT: this file implements a C entry point
using distri::Status;

extern "C" {

distri_status_t distri_job_get_preview(distri_job_t* job, distri_buffer_t** out_image, distri_image_info_t* out_info,
                                       uint32_t* out_step) {
  return Guard("distri_job_get_preview", [&]() -> Status {
    if (out_image == nullptr) return Status::InvalidArgument("out_image is NULL");
    *out_image = nullptr;
    if (out_step == nullptr) return Status::InvalidArgument("out_step is NULL");
    *out_step = 0;
    DISTRI_RETURN_IF_ERROR(CheckHandle(job, "job"));
    DISTRI_RETURN_IF_ERROR(CheckOutput("distri_image_info_t", out_info, kImageInfoV1Size));
    return GetPreview(job, out_image, out_info, out_step);
  });
}

}  // extern "C"
