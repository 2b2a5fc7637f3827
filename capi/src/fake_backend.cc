// The "fake://" cluster (distri.h): jobs progress one step per 2 ms of wall time and "render"
// a test pattern derived from the seed and the size, so programs and bindings can be tested
// without processes, GPUs or a model. It follows the head's contract (runtime/wire/job_messages.h):
// the same states, NotFound for unknown ids, FailedPrecondition for unfinished results, and
// latent previews (JobSpec.preview_every) of image / 8 pixels, served only while a job runs,
// and batches accepted all or none. Each PNG says how its job arrived (text chunk
// "fake:submitted": "alone", or "batch of N" for one SubmitBatch call of N specs), so tests
// can check that distri_job_submit_batch hands the cluster the whole batch at once.
#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "capi/src/backend.h"
#include "runtime/common/png.h"

namespace distri::capi {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMsPerStep = 2;

struct FakeJob {
  wire::JobSpec spec;
  uint64_t seed = 0;
  Clock::time_point submitted;
  bool cancelled = false;
  uint32_t cancelled_at_step = 0;
  std::string submitted_as;  // "alone" or "batch of N" (the PNG's "fake:submitted")
};

class FakeBackend final : public Backend {
 public:
  Result<wire::JobAccepted> Submit(const wire::JobSpec& spec) override {
    DISTRI_RETURN_IF_ERROR(CheckSubmittable(spec));
    return Accept(spec, "alone", Unfinished());
  }

  // As the head's SubmitJobs: every spec is checked before any is accepted.
  Result<std::vector<wire::JobAccepted>> SubmitBatch(const std::vector<wire::JobSpec>& specs,
                                                     std::optional<size_t>* refused_spec) override {
    *refused_spec = std::nullopt;
    for (size_t i = 0; i < specs.size(); ++i) {
      if (Status s = CheckSubmittable(specs[i]); !s.ok()) {
        *refused_spec = i;
        return Status(s.code(), "jobs[" + std::to_string(i) + "] of " + std::to_string(specs.size()) + ": " +
                                    s.message() + " (no job of the batch was accepted)");
      }
    }
    const std::string submitted = "batch of " + std::to_string(specs.size());
    std::vector<wire::JobAccepted> accepted;
    accepted.reserve(specs.size());
    const uint32_t queued = Unfinished();
    for (size_t i = 0; i < specs.size(); ++i) {
      accepted.push_back(Accept(specs[i], submitted, queued + static_cast<uint32_t>(i)));
    }
    return accepted;
  }

  Result<wire::JobStatus> GetJob(const JobId& id, bool with_preview) override {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return Status::NotFound("job " + id.Hex() + " is not known to the (fake) cluster");
    wire::JobStatus s = StateOf(it->second);
    s.job_id = id;
    if (with_preview) DISTRI_RETURN_IF_ERROR(AddPreview(it->second, &s));
    return s;
  }

  Result<wire::JobStatus> Cancel(const JobId& id) override {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return Status::NotFound("job " + id.Hex() + " is not known to the (fake) cluster");
    wire::JobStatus s = StateOf(it->second);
    if (!wire::IsTerminal(s.state)) {
      it->second.cancelled = true;
      it->second.cancelled_at_step = s.step;
    }
    return GetJob(id, false);
  }

  Result<wire::JobResult> GetResult(const JobId& id) override {
    DISTRI_ASSIGN_OR_RETURN(wire::JobStatus s, GetJob(id, false));
    if (s.state != wire::JobState::kSucceeded) {
      return Status::FailedPrecondition("job " + id.Hex() + " is " + std::string(wire::JobStateName(s.state)));
    }
    const FakeJob& job = jobs_.at(id);
    RgbImage image;
    image.width = static_cast<int>(job.spec.width);
    image.height = static_cast<int>(job.spec.height);
    image.pixels.resize(size_t{job.spec.width} * job.spec.height * 3);
    for (uint32_t y = 0; y < job.spec.height; ++y) {
      for (uint32_t x = 0; x < job.spec.width; ++x) {
        uint8_t* p = &image.pixels[(size_t{y} * job.spec.width + x) * 3];
        p[0] = static_cast<uint8_t>(x * 255 / std::max(1u, job.spec.width - 1));
        p[1] = static_cast<uint8_t>(y * 255 / std::max(1u, job.spec.height - 1));
        p[2] = static_cast<uint8_t>((job.seed * 2654435761u + x * 7 + y * 13) >> 3);
      }
    }
    wire::JobResult r;
    r.job_id = id;
    r.format = job.spec.output_format;
    r.width = job.spec.width;
    r.height = job.spec.height;
    r.seed = job.seed;
    r.timings.run_ms = double(job.spec.steps) * kMsPerStep;
    r.timings.total_ms = r.timings.run_ms;
    r.gang.resize(1);
    if (r.format == wire::OutputFormat::kPng) {
      DISTRI_ASSIGN_OR_RETURN(r.image, EncodePng(image, {{"prompt", job.spec.prompt},
                                                         {"seed", std::to_string(job.seed)},
                                                         {"fake:submitted", job.submitted_as}}));
    } else {
      r.image.assign(image.pixels.begin(), image.pixels.end());
    }
    return r;
  }

  Result<ClusterSummary> GetClusterSummary() override {
    ClusterSummary s;
    s.nodes = 1;
    s.actors = 1;
    for (auto& [id, job] : jobs_) {
      auto st = StateOf(job).state;
      if (st == wire::JobState::kPending) ++s.queue_length;
      if (st == wire::JobState::kRunning) ++s.running_jobs;
    }
    s.idle_actors = s.running_jobs == 0 ? 1 : 0;
    return s;
  }

 private:
  // The real head refuses what the model cannot render; the fake checks the common rule.
  static Status CheckSubmittable(const wire::JobSpec& spec) {
    if (spec.width % 8 != 0 || spec.height % 8 != 0) {
      return Status::InvalidArgument("width and height must be multiples of 8, got " + std::to_string(spec.width) +
                                     "x" + std::to_string(spec.height));
    }
    return Status::Ok();
  }

  uint32_t Unfinished() const {
    uint32_t n = 0;
    for (const auto& [id, job] : jobs_) n += wire::IsTerminal(StateOf(job).state) ? 0 : 1;
    return n;
  }

  wire::JobAccepted Accept(const wire::JobSpec& spec, const std::string& submitted, uint32_t queue_position) {
    FakeJob job;
    job.spec = spec;
    job.seed = spec.seed.has_value() ? *spec.seed : rng_();
    job.submitted = Clock::now();
    job.submitted_as = submitted;
    const JobId id = JobId::Random();
    const uint64_t seed = job.seed;
    jobs_[id] = std::move(job);
    return wire::JobAccepted{id, seed, queue_position};
  }

  // The newest preview of a running job, as rank 0 would have made it: after the last
  // multiple of preview_every that is done, never after the last step; a flat colour that
  // changes with the step, at the latent's resolution (image / 8).
  static Status AddPreview(const FakeJob& job, wire::JobStatus* s) {
    const uint32_t every = job.spec.preview_every;
    if (every == 0 || s->state != wire::JobState::kRunning || s->total_steps < 2) return Status::Ok();
    const uint32_t step = std::min(s->step, s->total_steps - 1) / every * every;
    if (step == 0) return Status::Ok();
    RgbImage image;
    image.width = static_cast<int>(std::max(1u, job.spec.width / 8));
    image.height = static_cast<int>(std::max(1u, job.spec.height / 8));
    const uint8_t shade = static_cast<uint8_t>(uint64_t{step} * 255 / s->total_steps);
    image.pixels.assign(size_t(image.width) * image.height * 3, shade);
    DISTRI_ASSIGN_OR_RETURN(s->preview, EncodePng(image));
    s->preview_step = step;
    return Status::Ok();
  }

  // Every job runs at once, as if each had its own actor.
  static wire::JobStatus StateOf(const FakeJob& job) {
    wire::JobStatus s;
    s.total_steps = job.spec.steps;
    if (job.cancelled) {
      s.state = wire::JobState::kCancelled;
      s.step = job.cancelled_at_step;
      return s;
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - job.submitted).count();
    uint64_t step = static_cast<uint64_t>(ms) / kMsPerStep;
    if (step >= job.spec.steps) {
      s.step = job.spec.steps;
      if (job.spec.prompt == "fake:fail") {
        s.state = wire::JobState::kFailed;
        s.error = "fake failure requested by the prompt \"fake:fail\"";
      } else {
        s.state = wire::JobState::kSucceeded;
      }
    } else {
      s.step = static_cast<uint32_t>(step);
      s.state = wire::JobState::kRunning;
    }
    return s;
  }

  std::map<JobId, FakeJob> jobs_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace

std::unique_ptr<Backend> MakeFakeBackend() { return std::make_unique<FakeBackend>(); }

}  // namespace distri::capi
