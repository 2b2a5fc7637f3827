#include "runtime/head/metrics.h"

#include <cstdio>
#include <cstdlib>

namespace distri::head {
namespace {

// The shortest text that reads back as `v` ("0.1", not "0.10000000000000001").
std::string Num(double v) {
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void Line(std::string* out, const std::string& name, const std::string& labels, double v) {
  *out += name;
  if (!labels.empty()) *out += "{" + labels + "}";
  *out += " " + Num(v) + "\n";
}

void Help(std::string* out, const std::string& name, const std::string& type, const std::string& help) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::Render(const std::string& name, std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    Line(out, name + "_bucket", "le=\"" + Num(bounds_[i]) + "\"", static_cast<double>(cumulative));
  }
  Line(out, name + "_bucket", "le=\"+Inf\"", static_cast<double>(count_));
  Line(out, name + "_sum", "", sum_);
  Line(out, name + "_count", "", static_cast<double>(count_));
}

Metrics::Metrics()
    : step_seconds_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}),
      job_seconds_({0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}) {}

void Metrics::SetJobsByState(const wire::JobStateCounts& c) { std::lock_guard<std::mutex> l(mu_); jobs_ = c; }
void Metrics::SetQueueLength(size_t n) { std::lock_guard<std::mutex> l(mu_); queue_length_ = n; }
void Metrics::SetActors(const ActorCounts& c) { std::lock_guard<std::mutex> l(mu_); actors_ = c; }
void Metrics::SetNodes(size_t alive, size_t dead) {
  std::lock_guard<std::mutex> l(mu_);
  nodes_alive_ = alive;
  nodes_dead_ = dead;
}
void Metrics::SetMessagesRejected(uint64_t n) { std::lock_guard<std::mutex> l(mu_); rejected_ = n; }
void Metrics::ObserveStepSeconds(double s) { std::lock_guard<std::mutex> l(mu_); step_seconds_.Observe(s); }
void Metrics::ObserveJobSeconds(double s) { std::lock_guard<std::mutex> l(mu_); job_seconds_.Observe(s); }
void Metrics::JobSubmitted() { std::lock_guard<std::mutex> l(mu_); ++submitted_; }
void Metrics::JobRequeued() { std::lock_guard<std::mutex> l(mu_); ++requeued_; }
void Metrics::JobFailed() { std::lock_guard<std::mutex> l(mu_); ++failed_; }
void Metrics::GangFormed() { std::lock_guard<std::mutex> l(mu_); ++gangs_formed_; }
void Metrics::GangReused() { std::lock_guard<std::mutex> l(mu_); ++gang_reuses_; }
void Metrics::GangReleased() { std::lock_guard<std::mutex> l(mu_); ++gang_releases_; }

std::string Metrics::Render() const {
  std::lock_guard<std::mutex> l(mu_);
  std::string out;
  Help(&out, "distri_jobs", "gauge", "Jobs in the head's store by state.");
  const std::pair<const char*, uint64_t> states[] = {
      {"PENDING", jobs_.pending}, {"SCHEDULED", jobs_.scheduled}, {"RUNNING", jobs_.running},
      {"SUCCEEDED", jobs_.succeeded}, {"FAILED", jobs_.failed}, {"CANCELLED", jobs_.cancelled}};
  for (const auto& [name, n] : states) Line(&out, "distri_jobs", std::string("state=\"") + name + "\"", double(n));
  Help(&out, "distri_queue_length", "gauge", "PENDING jobs waiting for a gang.");
  Line(&out, "distri_queue_length", "", double(queue_length_));
  Help(&out, "distri_actors", "gauge", "Actors by state and kind.");
  const std::tuple<const char*, const char*, size_t> actors[] = {
      {"idle", "gpu", actors_.gpu_idle}, {"busy", "gpu", actors_.gpu_busy}, {"dead", "gpu", actors_.gpu_dead},
      {"idle", "cpu", actors_.cpu_idle}, {"busy", "cpu", actors_.cpu_busy}, {"dead", "cpu", actors_.cpu_dead}};
  for (const auto& [state, kind, n] : actors) {
    Line(&out, "distri_actors", std::string("state=\"") + state + "\",kind=\"" + kind + "\"", double(n));
  }
  Help(&out, "distri_gpu_actors_busy", "gauge", "GPU actors running a task.");
  Line(&out, "distri_gpu_actors_busy", "", double(actors_.gpu_busy));
  Help(&out, "distri_nodes", "gauge", "Node agents by liveness.");
  Line(&out, "distri_nodes", "alive=\"true\"", double(nodes_alive_));
  Line(&out, "distri_nodes", "alive=\"false\"", double(nodes_dead_));
  Help(&out, "distri_step_seconds", "histogram", "Time of one denoising step (between two progress reports).");
  step_seconds_.Render("distri_step_seconds", &out);
  Help(&out, "distri_job_seconds", "histogram", "Job latency from acceptance to stored result.");
  job_seconds_.Render("distri_job_seconds", &out);
  Help(&out, "distri_jobs_submitted_total", "counter", "Jobs accepted.");
  Line(&out, "distri_jobs_submitted_total", "", double(submitted_));
  Help(&out, "distri_jobs_requeued_total", "counter", "Attempts re-queued after a failure or a dead actor.");
  Line(&out, "distri_jobs_requeued_total", "", double(requeued_));
  Help(&out, "distri_jobs_failed_total", "counter", "Jobs that failed max_attempts times.");
  Line(&out, "distri_jobs_failed_total", "", double(failed_));
  Help(&out, "distri_messages_rejected_total", "counter", "Malformed control-plane messages rejected.");
  Line(&out, "distri_messages_rejected_total", "", double(rejected_));
  Help(&out, "distri_gangs_formed_total", "counter", "Gangs of two or more ranks formed at the rendezvous.");
  Line(&out, "distri_gangs_formed_total", "", double(gangs_formed_));
  Help(&out, "distri_gang_reuses_total", "counter", "Gang tasks run on a kept gang's channels (no rendezvous).");
  Line(&out, "distri_gang_reuses_total", "", double(gang_reuses_));
  Help(&out, "distri_gang_releases_total", "counter",
       "Kept gangs broken by the head, their members sent ReleaseGang to tear the channels down together.");
  Line(&out, "distri_gang_releases_total", "", double(gang_releases_));
  return out;
}

}  // namespace distri::head
