// HeadServer's jobs on the actors: scheduling onto gangs, task progress, completion, failure
// and re-queueing, kept-gang release (docs/runtime-design.md, "Job semantics", "Kept gangs").
#include <algorithm>

#include "runtime/common/logging.h"
#include "runtime/head/head_server.h"
#include "runtime/wire/field_versions.h"

namespace distri::head {

void HeadServer::Schedule() {
  if (queue_.empty()) return;
  std::vector<ActorSlot> slots = AliveSlots();
  if (slots.empty()) return;
  const std::vector<JobId> order = queue_.InOrder();
  // The auto gang size weighs a job against every other unfinished job: the ones queued behind
  // it and the ones placed (they hold actors), so the tail of a batch does not form new
  // multi-GPU gangs while the rest of the batch still runs one image per actor.
  const size_t others = active_.empty() ? 0 : active_.size() - 1;
  for (size_t i = 0; i < order.size(); ++i) {
    auto it = active_.find(order[i]);
    if (it == active_.end()) {
      queue_.Remove(order[i]);
      continue;
    }
    // A job the alive actors can never hold must not block the ones behind it. One that only
    // actors too old for a field it uses could hold fails: they would drop the field
    // (docs/runtime-design.md, "Peers of older minor versions").
    if (!scheduler_.Feasible(it->second.rec.spec, slots)) {
      if (wire::MinorVersionNeeded(it->second.rec.spec) == 0 || !VersionGateOpen()) continue;
      if (std::optional<std::string> why = TooOldForJob(it->second.rec.spec, slots, nodes_.All())) {
        FailQueued(order[i], "no actor can run it: " + *why);
      }
      continue;
    }
    std::optional<Placement> p = scheduler_.Place(it->second.rec.spec, slots, others);
    if (!p) break;  // strict order: no job overtakes a job that waits for actors
    for (const ActorSlot& chosen : p->gang) {
      for (ActorSlot& s : slots) {
        if (s.actor_id == chosen.actor_id) s.idle = false;
      }
    }
    AssignGang(it->second, *p);
  }
}

void HeadServer::AssignGang(ActiveJob& job, const Placement& placement) {
  JobRecord& rec = job.rec;
  rec.state = wire::JobState::kScheduled;
  if (rec.started_ms == 0) rec.started_ms = UnixMillis();
  if (Status s = store_->Update(rec); !s.ok()) {
    DISTRI_LOG(ERROR) << "head: job " << rec.id.Short() << ": not scheduled: " << s.ToString();
    rec.state = wire::JobState::kPending;
    return;
  }
  queue_.Remove(rec.id);
  // A gang every member keeps (same actors, same rank order, same backend) is reused under its
  // id: the actors run the task on the channels they kept, with no rendezvous
  // (docs/runtime-design.md, "Kept gangs"). Otherwise a new gang meets at the rendezvous.
  job.gang_id = placement.kept_gang.value_or(GangId::Random());
  job.gang.clear();
  GangRecord record{job.gang_id, {}, placement.channel_backend};
  for (size_t r = 0; r < placement.gang.size(); ++r) {
    const ActorSlot& a = placement.gang[r];
    job.gang.push_back({static_cast<uint32_t>(r), a.node_id, a.actor_id, a.gpu_index, a.hostname});
    record.members.push_back(a.actor_id);
  }
  if (placement.kept_gang) {
    metrics_.GangReused();
  } else if (job.gang.size() > 1) {
    metrics_.GangFormed();
  }
  job.rank_step.assign(job.gang.size(), -1);
  job.preview.clear();  // a new attempt: the old one's preview is stale
  job.preview_step = 0;
  job.rank_done.assign(job.gang.size(), false);
  job.step = 0;
  job.last_step_time = std::chrono::steady_clock::now();

  wire::AssignTask task;
  task.job_id = rec.id;
  task.attempt = rec.attempt;
  task.gang_id = job.gang_id;
  task.gang = job.gang;
  task.job = rec.spec;
  task.job.model = placement.model;
  task.channel_backend = placement.channel_backend;
  task.rendezvous = rendezvous_address_;
  DISTRI_LOG(INFO) << "job " << rec.id.Short() << " attempt " << rec.attempt << ": gang " << job.gang_id.Short()
                   << " of " << job.gang.size() << " (" << placement.channel_backend << ", model "
                   << placement.model << ")"
                   << (placement.kept_gang ? ": reuses kept gang " + job.gang_id.Short() + " (no rendezvous)" : "");
  for (const wire::GangMember& member : job.gang) {
    actors_.Assign(member.actor_id, {rec.id, rec.attempt, member.rank}, record);
  }
  // Kept gangs this assignment broke are released first: a member that gets the task also
  // gets ReleaseGang before it, and all members tear the old channels down together.
  ReleaseBrokenGangs();
  std::vector<ActorId> unreachable;
  for (const wire::GangMember& member : job.gang) {
    task.rank = member.rank;
    const ActorEntry* a = actors_.Find(member.actor_id);
    const Status s = router_->Send(a->peer, task, 0);
    if (!s.ok()) {
      DISTRI_LOG(WARNING) << "head: cannot send rank " << member.rank << " to actor " << member.actor_id.Short()
                          << ": " << s.ToString();
      unreachable.push_back(member.actor_id);
    }
  }
  // Last: OnActorDied may erase `job`.
  for (const ActorId& a : unreachable) {
    OnActorDied(a, actors_.MarkDead(a), "unreachable when its task was sent");
  }
}

void HeadServer::CancelRanks(const ActiveJob& job, uint32_t attempt) {
  for (size_t r = 0; r < job.gang.size(); ++r) {
    if (r < job.rank_done.size() && job.rank_done[r]) continue;
    const ActorEntry* a = actors_.Find(job.gang[r].actor_id);
    if (a == nullptr || a->state != wire::ActorState::kBusy || !a->task || a->task->job_id != job.rec.id ||
        a->task->attempt != attempt) {
      continue;
    }
    const Status s = router_->Send(a->peer, wire::CancelTask{job.rec.id, attempt}, 0);
    if (!s.ok()) DISTRI_LOG(DEBUG) << "head: CancelTask to " << a->id.Short() << ": " << s.ToString();
    actors_.CancelSent(a->id, *a->task, NowMs());  // bounded wait for its TaskDone (Tick)
  }
}

void HeadServer::ReleaseBrokenGangs() {
  for (const GangRecord& gang : actors_.TakeBrokenGangs()) {
    // Counted before the sends: whoever sees a ReleaseGang arrive also sees it in the metrics.
    metrics_.GangReleased();
    size_t sent = 0;
    for (const ActorId& id : gang.members) {
      const ActorEntry* a = actors_.Find(id);
      // An actor older than ReleaseGang kept nothing (ActorTable) and would answer an Error.
      if (a == nullptr || a->state == wire::ActorState::kDead || a->wire_minor < kKeptGangsMinor) continue;
      const Status s = router_->Send(a->peer, wire::ReleaseGang{gang.gang_id}, 0);
      if (s.ok()) {
        ++sent;
      } else {
        DISTRI_LOG(DEBUG) << "head: ReleaseGang to " << a->id.Short() << ": " << s.ToString();
      }
    }
    // Nobody will connect to it again: free its rendezvous keys (the store is bounded).
    if (rendezvous_) rendezvous_->ErasePrefix("gang/" + gang.gang_id.Hex() + "/");
    DISTRI_LOG(INFO) << "head: kept gang " << gang.gang_id.Short() << " of " << gang.members.size()
                     << " released (ReleaseGang sent to " << sent << " live member(s))";
  }
}

void HeadServer::AbortAttempt(const JobId& job_id, const std::string& why, bool failure) {
  auto it = active_.find(job_id);
  if (it == active_.end()) return;
  ActiveJob& job = it->second;
  CancelRanks(job, job.rec.attempt);
  // The attempt's channels are aborted on every rank and never reused (a kept gang it ran on
  // is broken by the failure): free its rendezvous keys (the store is bounded).
  if (rendezvous_ && !job.gang.empty()) rendezvous_->ErasePrefix("gang/" + job.gang_id.Hex() + "/");
  job.gang.clear();
  job.rank_step.clear();
  job.rank_done.clear();
  job.step = 0;
  job.rec.error = why;
  if (failure) ++job.rec.failures;
  if (failure && job.rec.failures >= options_.max_attempts) {
    job.rec.state = wire::JobState::kFailed;
    job.rec.finished_ms = UnixMillis();
    job.rec.error = "failed " + std::to_string(job.rec.failures) + " attempts; last: " + why;
    Persist(job.rec);
    metrics_.JobFailed();
    DISTRI_LOG(WARNING) << "job " << job_id.Short() << " FAILED: " << job.rec.error;
    active_.erase(it);
    return;
  }
  job.rec.attempt += 1;
  job.rec.state = wire::JobState::kPending;
  Persist(job.rec);
  queue_.Push(job_id, job.rec.spec.priority, job.rec.sequence);
  metrics_.JobRequeued();
  DISTRI_LOG(WARNING) << "job " << job_id.Short() << ": attempt " << job.rec.attempt - 1 << " aborted (" << why
                      << "); re-queued as attempt " << job.rec.attempt << " with the same seed";
}

void HeadServer::OnActorDied(const ActorId& actor, const std::optional<TaskRef>& task, const std::string& why) {
  DISTRI_LOG(WARNING) << "actor " << actor.Short() << " is dead: " << why;
  if (!task) return;
  auto it = active_.find(task->job_id);
  if (it == active_.end() || it->second.rec.attempt != task->attempt || it->second.gang.empty()) return;
  AbortAttempt(task->job_id, "rank " + std::to_string(task->rank) + " (actor " + actor.Short() + ") died: " + why,
               /*failure=*/true);
}

void HeadServer::OnTaskProgress(const Incoming& in, const wire::TaskProgress& m) {
  const ActorEntry* a = actors_.FindByPeer(in.peer);
  if (a == nullptr) return;
  if (a->state == wire::ActorState::kIdle) {
    // A task the head did not assign (it restarted meanwhile): keep the actor busy until it ends.
    actors_.Assign(a->id, {m.job_id, m.attempt, m.rank});
  }
  auto it = active_.find(m.job_id);
  if (it == active_.end()) return;
  ActiveJob& job = it->second;
  if (m.attempt != job.rec.attempt || m.rank >= job.gang.size()) return;
  if (job.rec.state == wire::JobState::kScheduled) {
    job.rec.state = wire::JobState::kRunning;
    Persist(job.rec);
  }
  job.rank_step[m.rank] = std::max<int64_t>(job.rank_step[m.rank], m.step);
  if (m.rank == 0 && !m.preview.empty() && m.step >= job.preview_step) {
    job.preview = m.preview;
    job.preview_step = m.step;
  }
  int64_t lowest = -1;
  for (int64_t s : job.rank_step) {
    if (s >= 0 && (lowest < 0 || s < lowest)) lowest = s;
  }
  const uint32_t step = static_cast<uint32_t>(std::max<int64_t>(lowest, 0));
  if (step > job.step) {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - job.last_step_time).count();
    metrics_.ObserveStepSeconds(seconds / (step - job.step));
    job.last_step_time = now;
    job.step = step;
  }
}

void HeadServer::OnTaskDone(const Incoming& in, const wire::TaskDone& m) {
  const ActorEntry* a = actors_.FindByPeer(in.peer);
  if (a == nullptr || a->state == wire::ActorState::kDead) {
    DISTRI_LOG(WARNING) << "head: TaskDone from " << in.envelope.sender_id << ", not a registered actor";
    (void)router_->ReplyError(in, Status::FailedPrecondition("not registered with this head: send RegisterActor"));
    return;
  }
  const ActorId actor = a->id;
  // A success keeps the task's gang for this actor (it keeps the channels too); anything else
  // drops it (docs/runtime-design.md, "Kept gangs").
  actors_.Release(actor, {m.job_id, m.attempt, m.rank}, /*succeeded=*/m.error_code == 0);
  auto it = active_.find(m.job_id);
  if (it == active_.end()) return;  // finished or cancelled meanwhile
  ActiveJob& job = it->second;
  if (m.error_code == 0 && m.rank == 0 && !m.image.empty() && m.format == wire::OutputFormat::kRgb8 &&
      m.image.size() != uint64_t{m.width} * m.height * 3) {
    AbortAttempt(m.job_id, "rank 0 sent an rgb8 image of " + std::to_string(m.image.size()) + " bytes for " +
                               std::to_string(m.width) + "x" + std::to_string(m.height), /*failure=*/true);
    return;
  }
  if (m.error_code == 0 && m.rank == 0 && !m.image.empty()) {
    // Any attempt's image is the job's image (same seed): the first one wins.
    if (m.attempt != job.rec.attempt && !job.gang.empty()) CancelRanks(job, job.rec.attempt);
    Succeed(job, m);
    return;
  }
  if (m.attempt != job.rec.attempt || job.gang.empty() || m.rank >= job.gang.size()) return;  // stale
  if (m.error_code != 0) {
    const Status err = wire::Error{m.error_code, m.error_message}.ToStatus();
    AbortAttempt(m.job_id, "rank " + std::to_string(m.rank) + " failed: " + err.ToString(), /*failure=*/true);
    return;
  }
  if (m.rank == 0) {
    AbortAttempt(m.job_id, "rank 0 finished without an image", /*failure=*/true);
    return;
  }
  job.rank_done[m.rank] = true;
}

void HeadServer::Succeed(ActiveJob& job, const wire::TaskDone& done) {
  JobRecord& rec = job.rec;
  rec.state = wire::JobState::kSucceeded;
  rec.finished_ms = UnixMillis();
  rec.error.clear();
  wire::JobResult result;
  result.job_id = rec.id;
  result.format = done.format;
  result.image = done.image;
  result.width = done.width != 0 ? done.width : rec.spec.width;
  result.height = done.height != 0 ? done.height : rec.spec.height;
  result.seed = rec.spec.seed.value_or(0);
  const int64_t started = rec.started_ms != 0 ? rec.started_ms : rec.submitted_ms;
  result.timings.queued_ms = static_cast<double>(started - rec.submitted_ms);
  result.timings.run_ms = static_cast<double>(rec.finished_ms - started);
  result.timings.total_ms = static_cast<double>(rec.finished_ms - rec.submitted_ms);
  result.timings.denoise_ms = done.denoise_ms;
  result.timings.decode_ms = done.decode_ms;
  result.gang = job.gang;  // empty when an earlier attempt's gang (before a head restart) finished it
  result.attempt = done.attempt;
  if (Status s = store_->PutResult(rec, result); !s.ok()) {
    DISTRI_LOG(ERROR) << "head: job " << rec.id.Short() << ": cannot store its result: " << s.ToString();
    AbortAttempt(rec.id, "the head could not store the result: " + s.message(), /*failure=*/true);
    return;
  }
  metrics_.ObserveJobSeconds(result.timings.total_ms / 1000.0);
  DISTRI_LOG(INFO) << "job " << rec.id.Short() << " SUCCEEDED (attempt " << done.attempt << ", "
                   << result.image.size() << " bytes, " << result.timings.total_ms << " ms)";
  queue_.Remove(rec.id);
  active_.erase(rec.id);
}

}  // namespace distri::head
