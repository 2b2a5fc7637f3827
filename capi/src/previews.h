// Latent previews of a job (distri_job_get_preview, distri.h): the head keeps only the newest
// preview of a running job and drops it when the job ends, so each job handle keeps the newest
// one it has received (from distri_job_get_preview's request, or from distri_job_wait's polls
// of a job submitted with preview_every), and a preview outlives the job's last step.
#pragma once

#include "capi/src/handles.h"
#include "runtime/wire/job_messages.h"

namespace distri::capi {

// Keeps `s.preview` in `job` if it is newer than the one kept: a later step of the same
// attempt, or any preview of a later attempt (a new attempt also drops the old one's).
void RememberPreview(distri_job_t* job, const wire::JobStatus& s);

}  // namespace distri::capi
