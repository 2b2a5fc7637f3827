// Metrics: the head's Prometheus metrics, rendered in the text exposition format (0.0.4).
//
//   distri_jobs{state="PENDING"} 3              gauge: jobs in the store by state
//   distri_queue_length 3                       gauge: PENDING jobs waiting for a gang
//   distri_actors{state="busy",kind="gpu"} 2    gauge: actors by state and kind (gpu/cpu)
//   distri_gpu_actors_busy 2                    gauge: GPU actors running a task
//   distri_nodes{alive="true"} 2                gauge
//   distri_step_seconds_bucket{le="0.1"} ...    histogram: time between two progress reports
//                                               of one task (one denoising step)
//   distri_job_seconds_bucket{le="10"} ...      histogram: accepted -> result stored
//   distri_jobs_submitted_total, distri_jobs_requeued_total, distri_jobs_failed_total,
//   distri_messages_rejected_total              counters
//   distri_gangs_formed_total                   counter: gangs of >= 2 ranks that met at the
//                                               rendezvous (new channels)
//   distri_gang_reuses_total                    counter: gang tasks sent to a kept gang (its
//                                               channels reused, no rendezvous)
//   distri_gang_releases_total                  counter: kept gangs broken and released
//                                               (ReleaseGang sent to their live members)
//
// Thread-safe: the head's server thread writes, the HTTP thread renders.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/wire/cluster_messages.h"

namespace distri::head {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);
  // Appends the _bucket / _sum / _count lines of metric `name`.
  void Render(const std::string& name, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last = +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct ActorCounts {
  size_t gpu_idle = 0, gpu_busy = 0, gpu_dead = 0;
  size_t cpu_idle = 0, cpu_busy = 0, cpu_dead = 0;
};

class Metrics {
 public:
  Metrics();

  void SetJobsByState(const wire::JobStateCounts& counts);
  void SetQueueLength(size_t n);
  void SetActors(const ActorCounts& counts);
  void SetNodes(size_t alive, size_t dead);
  void SetMessagesRejected(uint64_t n);
  void ObserveStepSeconds(double seconds);
  void ObserveJobSeconds(double seconds);
  void JobSubmitted();
  void JobRequeued();
  void JobFailed();
  void GangFormed();
  void GangReused();
  void GangReleased();

  std::string Render() const;

 private:
  mutable std::mutex mu_;
  wire::JobStateCounts jobs_;
  size_t queue_length_ = 0;
  ActorCounts actors_;
  size_t nodes_alive_ = 0, nodes_dead_ = 0;
  uint64_t rejected_ = 0, submitted_ = 0, requeued_ = 0, failed_ = 0;
  uint64_t gangs_formed_ = 0, gang_reuses_ = 0, gang_releases_ = 0;
  Histogram step_seconds_;
  Histogram job_seconds_;
};

}  // namespace distri::head
