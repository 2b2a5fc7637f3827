// HeadServer's jobs from the clients' side: submit (single and batch), query, cancel, results,
// persistence and reload (docs/runtime-design.md, "Job semantics"). Running them on actors:
// head_tasks.cc.
#include <algorithm>
#include <random>
#include <unordered_map>

#include "runtime/common/logging.h"
#include "runtime/head/head_server.h"
#include "runtime/head/job_validation.h"
#include "runtime/wire/field_versions.h"

namespace distri::head {
namespace {

uint64_t DrawSeed() {
  // [0, 2^32): fits every binding's integer type and `distri generate --seed`.
  static std::mt19937_64 rng(std::random_device{}());
  return rng() & 0xFFFFFFFFull;
}

}  // namespace

void HeadServer::Persist(const JobRecord& rec) {
  const Status s = store_->Update(rec);
  if (!s.ok()) DISTRI_LOG(ERROR) << "head: job " << rec.id.Short() << ": " << s.ToString();
}

Status HeadServer::LoadJobs() {
  DISTRI_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, store_->LoadUnfinished());
  for (JobRecord& rec : jobs) {
    if (rec.state != wire::JobState::kPending) {
      // It held a gang when the head stopped: run it again (at-least-once).
      rec.attempt += 1;
      rec.state = wire::JobState::kPending;
      DISTRI_RETURN_IF_ERROR(store_->Update(rec));
    }
    queue_.Push(rec.id, rec.spec.priority, rec.sequence);
    ActiveJob job;
    job.rec = std::move(rec);
    active_.emplace(job.rec.id, std::move(job));
  }
  if (!jobs.empty()) DISTRI_LOG(INFO) << "head: resumed " << jobs.size() << " unfinished jobs from " << store_->path();
  return Status::Ok();
}

wire::JobStatus HeadServer::StatusOf(const JobRecord& rec, uint32_t step) const {
  wire::JobStatus st;
  st.job_id = rec.id;
  st.state = rec.state;
  st.total_steps = rec.spec.steps;
  st.step = rec.state == wire::JobState::kSucceeded ? rec.spec.steps : std::min(step, rec.spec.steps);
  st.attempt = rec.attempt;
  st.queue_position = queue_.Position(rec.id).value_or(0);
  st.error = rec.error.substr(0, wire::kMaxErrorMessageBytes);
  return st;
}

Status HeadServer::CheckSubmittable(const wire::JobSpec& spec) const {
  DISTRI_RETURN_IF_ERROR(ValidateJobSpec(spec));
  const size_t capacity = nodes_.AliveCapacity();
  if (capacity > 0 && spec.gpus > capacity) {
    return Status::InvalidArgument("job: asks for " + std::to_string(spec.gpus) + " GPUs, the cluster has " +
                                   std::to_string(capacity) + " actors");
  }
  if (!spec.model.empty() && actors_.CountAlive("") > 0 && actors_.CountAlive(spec.model) == 0 &&
      !nodes_.AnyAliveNodeLists(spec.model)) {
    return Status::InvalidArgument("job: no actor of this cluster holds model '" + spec.model + "'");
  }
  if (wire::MinorVersionNeeded(spec) > 0 && VersionGateOpen()) {
    if (std::optional<std::string> why = TooOldForJob(spec, AliveSlots(), nodes_.All())) {
      return Status::FailedPrecondition("job: " + *why);
    }
  }
  return Status::Ok();
}

std::vector<ActorSlot> HeadServer::AliveSlots() const {
  std::vector<ActorSlot> slots;
  for (const ActorEntry* a : actors_.All()) {
    if (a->state == wire::ActorState::kDead) continue;
    const NodeEntry* node = nodes_.Find(a->node_id);
    if (node != nullptr && !node->alive) continue;
    slots.push_back({a->id, a->node_id, a->gpu_index, node ? node->resources.hostname : "", a->model,
                     a->state == wire::ActorState::kIdle, a->kept_gang, a->wire_minor});
  }
  return slots;
}

bool HeadServer::VersionGateOpen() const {
  return NowMs() >= int64_t{options_.heartbeat_interval_ms} * options_.missed_heartbeats;
}

void HeadServer::FailQueued(const JobId& job_id, const std::string& why) {
  auto it = active_.find(job_id);
  if (it == active_.end()) return;
  JobRecord& rec = it->second.rec;
  queue_.Remove(job_id);
  rec.state = wire::JobState::kFailed;
  rec.finished_ms = UnixMillis();
  rec.error = why;
  Persist(rec);
  metrics_.JobFailed();
  DISTRI_LOG(WARNING) << "job " << job_id.Short() << " FAILED: " << why;
  active_.erase(it);
}

JobRecord HeadServer::NewJob(const wire::JobSpec& spec) {
  JobRecord rec;
  rec.id = JobId::Random();
  rec.spec = spec;
  if (!rec.spec.seed) rec.spec.seed = DrawSeed();
  rec.submitted_ms = UnixMillis();
  return rec;
}

void HeadServer::Enqueue(JobRecord rec) {
  queue_.Push(rec.id, rec.spec.priority, rec.sequence);
  metrics_.JobSubmitted();
  ActiveJob job;
  job.rec = std::move(rec);
  active_.emplace(job.rec.id, std::move(job));
}

void HeadServer::OnSubmit(const Incoming& in, const wire::SubmitJob& m) {
  if (Status valid = CheckSubmittable(m.spec); !valid.ok()) {
    DISTRI_LOG(INFO) << "head: refused a job from " << in.envelope.sender_id << " (protocol "
                     << int{in.envelope.version_major} << "." << int{in.envelope.version_minor}
                     << "): " << valid.message();
    (void)router_->ReplyError(in, valid);
    return;
  }
  JobRecord rec = NewJob(m.spec);
  if (Status s = store_->Insert(&rec); !s.ok()) {
    DISTRI_LOG(ERROR) << "head: cannot record a job: " << s.ToString();
    (void)router_->ReplyError(in, Status::Internal("the head could not record the job: " + s.message()));
    return;
  }
  DISTRI_LOG(INFO) << "job " << rec.id.Short() << " accepted from " << in.envelope.sender_id << " (protocol "
                   << int{in.envelope.version_major} << "." << int{in.envelope.version_minor} << "): "
                   << rec.spec.width << "x" << rec.spec.height << ", " << rec.spec.steps << " steps, seed "
                   << *rec.spec.seed << ", gpus " << (rec.spec.gpus == 0 ? std::string("auto") : std::to_string(rec.spec.gpus));
  const JobId id = rec.id;
  const uint64_t seed = *rec.spec.seed;
  Enqueue(std::move(rec));
  (void)router_->Reply(in, wire::JobAccepted{id, seed, queue_.Position(id).value_or(0)});
}

// The batch is what makes "auto" gang sizes right for it: Run schedules once after this
// message, with every job of the batch already queued behind the first, so AutoGangSize sees
// the real queue (one image per GPU for a long batch of small images) instead of an empty one.
void HeadServer::OnSubmitJobs(const Incoming& in, const wire::SubmitJobs& m) {
  for (size_t i = 0; i < m.jobs.size(); ++i) {
    if (Status valid = CheckSubmittable(m.jobs[i]); !valid.ok()) {
      std::string why = valid.message();
      if (why.rfind("job: ", 0) == 0) why = why.substr(5);
      const Status refused(valid.code(), "jobs[" + std::to_string(i) + "] of " + std::to_string(m.jobs.size()) +
                                             ": " + why + " (no job of the batch was accepted)");
      DISTRI_LOG(INFO) << "head: refused a batch from " << in.envelope.sender_id << " (protocol "
                       << int{in.envelope.version_major} << "." << int{in.envelope.version_minor}
                       << "): " << refused.message();
      (void)router_->ReplyError(in, refused);
      return;
    }
  }
  std::vector<JobRecord> recs;
  recs.reserve(m.jobs.size());
  for (const wire::JobSpec& spec : m.jobs) recs.push_back(NewJob(spec));
  if (Status s = store_->InsertAll(&recs); !s.ok()) {
    DISTRI_LOG(ERROR) << "head: cannot record a batch of " << recs.size() << " jobs: " << s.ToString();
    (void)router_->ReplyError(in, Status::Internal("the head could not record the batch: " + s.message()));
    return;
  }
  wire::JobsAccepted reply;
  reply.jobs.reserve(recs.size());
  for (JobRecord& rec : recs) {
    DISTRI_LOG(DEBUG) << "job " << rec.id.Short() << " accepted from " << in.envelope.sender_id << " in a batch: "
                      << rec.spec.width << "x" << rec.spec.height << ", " << rec.spec.steps << " steps, seed "
                      << *rec.spec.seed;
    reply.jobs.push_back({rec.id, *rec.spec.seed, 0});
    Enqueue(std::move(rec));
  }
  // Positions with the whole batch queued, in one pass (JobQueue::Position is linear per job).
  std::unordered_map<JobId, uint32_t> position;
  const std::vector<JobId> order = queue_.InOrder();
  for (size_t p = 0; p < order.size(); ++p) position.emplace(order[p], static_cast<uint32_t>(p));
  for (wire::JobAccepted& a : reply.jobs) a.queue_position = position[a.job_id];
  const wire::JobSpec& first = m.jobs.front();
  DISTRI_LOG(INFO) << "batch of " << reply.jobs.size() << " jobs accepted from " << in.envelope.sender_id << " (protocol "
                   << int{in.envelope.version_major} << "." << int{in.envelope.version_minor} << ", jobs "
                   << reply.jobs.front().job_id.Short() << ".." << reply.jobs.back().job_id.Short() << ", first "
                   << first.width << "x" << first.height << ", " << first.steps << " steps, gpus "
                   << (first.gpus == 0 ? std::string("auto") : std::to_string(first.gpus)) << "); queue "
                   << queue_.size();
  (void)router_->Reply(in, reply);
}

void HeadServer::OnGetJob(const Incoming& in, const wire::GetJob& m) {
  if (auto it = active_.find(m.job_id); it != active_.end()) {
    wire::JobStatus st = StatusOf(it->second.rec, it->second.step);
    if (m.with_preview && !it->second.preview.empty()) {
      st.preview = it->second.preview;
      st.preview_step = std::min(it->second.preview_step, st.total_steps);
    }
    (void)router_->Reply(in, st);
    return;
  }
  Result<JobRecord> rec = store_->Get(m.job_id);
  if (!rec.ok()) {
    (void)router_->ReplyError(in, rec.status());
    return;
  }
  (void)router_->Reply(in, StatusOf(*rec, 0));
}

void HeadServer::OnCancel(const Incoming& in, const wire::CancelJob& m) {
  auto it = active_.find(m.job_id);
  if (it == active_.end()) {
    OnGetJob(in, wire::GetJob{m.job_id});  // terminal already (or NotFound)
    return;
  }
  ActiveJob& job = it->second;
  queue_.Remove(job.rec.id);
  if (!job.gang.empty()) CancelRanks(job, job.rec.attempt);
  job.rec.state = wire::JobState::kCancelled;
  job.rec.finished_ms = UnixMillis();
  Persist(job.rec);
  DISTRI_LOG(INFO) << "job " << job.rec.id.Short() << " cancelled by " << in.envelope.sender_id;
  const wire::JobStatus st = StatusOf(job.rec, job.step);
  active_.erase(it);
  (void)router_->Reply(in, st);
}

void HeadServer::OnGetResult(const Incoming& in, const wire::GetJobResult& m) {
  if (auto it = active_.find(m.job_id); it != active_.end()) {
    (void)router_->ReplyError(in, Status::FailedPrecondition("job " + m.job_id.Hex() + " is " +
                                                             std::string(wire::JobStateName(it->second.rec.state)) +
                                                             ": no image yet"));
    return;
  }
  Result<JobRecord> rec = store_->Get(m.job_id);
  if (!rec.ok()) {
    (void)router_->ReplyError(in, rec.status());
    return;
  }
  if (rec->state != wire::JobState::kSucceeded) {
    (void)router_->ReplyError(in, Status::FailedPrecondition("job " + m.job_id.Hex() + " is " +
                                                             std::string(wire::JobStateName(rec->state)) +
                                                             (rec->error.empty() ? "" : ": " + rec->error)));
    return;
  }
  Result<wire::JobResult> result = store_->GetResult(m.job_id);
  if (!result.ok()) {
    (void)router_->ReplyError(in, result.status());
    return;
  }
  (void)router_->Reply(in, *result);
}

}  // namespace distri::head
