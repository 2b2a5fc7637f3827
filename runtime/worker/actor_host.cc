#include "runtime/worker/actor_host.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "runtime/common/logging.h"
#include "runtime/wire/dealer_socket.h"
#include "runtime/wire/zmq_context.h"

namespace distri::worker {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

uint64_t UnixTimeMs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::string TaskName(const wire::AssignTask& t) {
  return "job " + t.job_id.Short() + " attempt " + std::to_string(t.attempt) + " rank " + std::to_string(t.rank) +
         "/" + std::to_string(t.gang.size());
}

bool SameTask(const wire::AssignTask& a, const JobId& job, uint32_t attempt) {
  return a.job_id == job && a.attempt == attempt;
}

// How long a TaskDone is resent while the head is unreachable.
constexpr auto kDoneLifetime = std::chrono::seconds(60);
// Gang ids remembered as connected by this actor (the head never reuses an old one).
constexpr size_t kConnectedGangsRemembered = 256;

}  // namespace

Result<std::unique_ptr<ActorHost>> ActorHost::Create(ActorHostOptions o, TaskExecutor* executor) {
  if (executor == nullptr) return Status::InvalidArgument("ActorHost: no executor");
  if (o.head.empty()) return Status::InvalidArgument("--head: the head's address is required (tcp://HOST:PORT)");
  if (o.head.find("://") == std::string::npos) o.head = "tcp://" + o.head;
  if (o.actor_id.IsNil()) return Status::InvalidArgument("--actor-id: required");
  if (o.node_id.IsNil()) return Status::InvalidArgument("--node-id: required");
  if (o.model.empty()) return Status::InvalidArgument("ActorHost: the model name is empty");
  if (o.device.empty()) return Status::InvalidArgument("ActorHost: the device is empty");
  if (!o.keys) {
    if (o.keys_dir.empty()) return Status::InvalidArgument("--keys: the cluster's key directory is required");
    DISTRI_ASSIGN_OR_RETURN(wire::CurveKeyPair keys, wire::ReadKeyPairFile(o.keys_dir + "/node.key"));
    o.keys = std::move(keys);
  }
  if (o.head_public_key.empty()) {
    if (o.keys_dir.empty()) return Status::InvalidArgument("--keys: the cluster's key directory is required");
    DISTRI_ASSIGN_OR_RETURN(o.head_public_key, wire::ReadPublicKeyFile(o.keys_dir + "/head.pub"));
  }
  return std::unique_ptr<ActorHost>(new ActorHost(std::move(o), executor));
}

ActorHost::ActorHost(ActorHostOptions options, TaskExecutor* executor)
    : options_(std::move(options)), executor_(executor) {}

ActorHost::~ActorHost() { Stop(); }

int ActorHost::gangs_parked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(parked_.size());
}

bool ActorHost::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_ != nullptr || pending_.has_value();
}

Status ActorHost::Start() {
  if (started_.exchange(true)) return Status::FailedPrecondition("ActorHost::Start called twice");
  DISTRI_ASSIGN_OR_RETURN(wake_, WakeupFd::Create());
  DISTRI_ASSIGN_OR_RETURN(context_, wire::ZmqContext::Create());
  wire::DealerOptions d;
  d.endpoint = options_.head;
  d.sender_id = "actor:" + options_.actor_id.Hex();
  d.curve = options_.keys;
  d.server_public_key = options_.head_public_key;
  DISTRI_ASSIGN_OR_RETURN(socket_, wire::DealerSocket::Connect(context_, d));
  connection_thread_ = std::thread([this] { ConnectionLoop(); });
  reaper_thread_ = std::thread([this] { ReaperLoop(); });
  task_thread_ = std::thread([this] { TaskLoop(); });
  return Status::Ok();
}

void ActorHost::Stop() {
  stop_ = true;
  if (wake_) wake_->Notify();
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.reset();
    if (running_) CancelLocked(*running_, StatusCode::kCancelled, "the actor is stopping");
  }
  cv_.notify_all();
  if (task_thread_.joinable()) task_thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    reaper_stop_ = true;  // set by the task thread too; not when it never ran
  }
  reaper_cv_.notify_all();
  if (reaper_thread_.joinable()) reaper_thread_.join();
  if (connection_thread_.joinable()) connection_thread_.join();
}

void ActorHost::Enqueue(Outgoing message) {
  std::lock_guard<std::mutex> lock(mu_);
  // Progress is only worth its latest value: a backlog (head unreachable) keeps the newest.
  if (std::holds_alternative<wire::TaskProgress>(message) && outbox_.size() > 256) return;
  QueueLocked(std::move(message));
}

void ActorHost::QueueLocked(Outgoing message) {
  outbox_.push_back(std::move(message));
  // Without the wake the message would wait for the connection thread's next timeout (a result
  // is on the critical path of every job).
  wake_->Notify();
}

wire::TaskDone ActorHost::DoneFor(const wire::AssignTask& task, const Status& status) {
  wire::TaskDone d;
  d.job_id = task.job_id;
  d.attempt = task.attempt;
  d.rank = task.rank;
  d.error_code = static_cast<int32_t>(status.code());
  d.error_message = status.message().substr(0, wire::kMaxErrorMessageBytes);
  return d;
}

void ActorHost::CancelLocked(Running& run, StatusCode code, const std::string& reason) {
  if (!run.cancelled.exchange(true)) {
    run.cancel_code = code;
    run.cancel_reason = reason;
  }
  if (run.channels != nullptr) run.channels->Abort(reason);
}

void ActorHost::HandleAssign(const wire::AssignTask& task) {
  std::lock_guard<std::mutex> lock(mu_);
  if ((running_ && SameTask(running_->task, task.job_id, task.attempt)) ||
      (pending_ && SameTask(*pending_, task.job_id, task.attempt))) {
    DISTRI_LOG(INFO) << "ignoring a repeated AssignTask for " << TaskName(task);
    return;
  }
  if (pending_) {
    DISTRI_LOG(WARNING) << TaskName(*pending_) << " was superseded by " << TaskName(task) << " before it started";
    QueueLocked(DoneFor(*pending_, Status::Cancelled("superseded by " + TaskName(task))));
  }
  if (running_) {
    DISTRI_LOG(WARNING) << "the head assigned " << TaskName(task) << " while " << TaskName(running_->task)
                        << " runs: cancelling the running one";
    CancelLocked(*running_, StatusCode::kCancelled, "superseded by " + TaskName(task));
  }
  DISTRI_LOG(INFO) << "assigned " << TaskName(task) << " (" << task.job.width << "x" << task.job.height << ", "
                   << task.job.steps << " steps, backend " << task.channel_backend << ")";
  pending_ = task;
  cv_.notify_all();
}

void ActorHost::HandleCancel(const wire::CancelTask& cancel) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_ && SameTask(running_->task, cancel.job_id, cancel.attempt)) {
    DISTRI_LOG(INFO) << "the head cancelled " << TaskName(running_->task);
    CancelLocked(*running_, StatusCode::kCancelled, "cancelled by the head");
  } else if (pending_ && SameTask(*pending_, cancel.job_id, cancel.attempt)) {
    QueueLocked(DoneFor(*pending_, Status::Cancelled("cancelled by the head before it started")));
    pending_.reset();
  } else {
    DISTRI_LOG(DEBUG) << "CancelTask for job " << cancel.job_id.Short() << " attempt " << cancel.attempt
                      << ": not running here";
  }
}

void ActorHost::HandleRelease(const wire::ReleaseGang& release) {
  const std::string gang = "gang " + release.gang_id.Short();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find_if(parked_.begin(), parked_.end(),
                         [&](const auto& set) { return set->gang_id() == release.gang_id; });
  if (it != parked_.end()) {
    DISTRI_LOG(INFO) << "the head released " << gang << ": destroying its parked channels";
    std::unique_ptr<GangChannelSet> set = std::move(*it);
    parked_.erase(it);
    DoomLocked(std::move(set));
  } else if (kept_ && kept_->gang_id() == release.gang_id) {
    // The executor may refer to the kept set: the task thread tells it first (ApplyReleases),
    // at once when idle, else after the task that uses the set.
    DISTRI_LOG(INFO) << "the head released " << gang << ": destroying its kept channels";
    release_kept_.insert(release.gang_id);
    cv_.notify_all();
  } else {
    DISTRI_LOG(DEBUG) << "ReleaseGang for " << gang << ": not kept or parked here";
  }
}

void ActorHost::DoomLocked(std::unique_ptr<GangChannelSet> set) {
  doomed_.push_back(std::move(set));
  reaper_cv_.notify_all();
}

void ActorHost::ReaperLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    reaper_cv_.wait(lock, [this] { return reaper_stop_ || !doomed_.empty(); });
    if (doomed_.empty()) return;  // stopping, and every released set is gone
    std::unique_ptr<GangChannelSet> set = std::move(doomed_.front());
    doomed_.pop_front();
    lock.unlock();
    // NCCL's finalize waits for the gang's other ranks (bounded: nccl_comm.cc aborts after 5 s).
    const GangId id = set->gang_id();
    const auto t0 = Clock::now();
    set.reset();
    gangs_destroyed_++;
    DISTRI_LOG(INFO) << "destroyed the channels of gang " << id.Short() << " in "
                     << std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count() << " ms";
    lock.lock();
  }
}

void ActorHost::CheckWatchdog() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!running_) return;
  Running& run = *running_;
  const auto now = Clock::now();
  if (run.watching && !run.reported && run.watchdog.Expired(now)) {
    const std::string why = "watchdog: no progress for " + std::to_string(run.watchdog.since_last_mark(now).count()) +
                            " ms (bound " + std::to_string(run.watchdog.Bound().count()) + " ms, slowest step " +
                            std::to_string(run.watchdog.slowest_step().count()) + " ms) in " + TaskName(run.task);
    DISTRI_LOG(ERROR) << why << ": aborting the gang's channels";
    CancelLocked(run, StatusCode::kDeadlineExceeded, why);
    run.reported = true;
    run.hung_since = now;
    QueueLocked(DoneFor(run.task, Status::DeadlineExceeded(why)));
  }
  if (run.hung_since && !run.hung_called && now - *run.hung_since > options_.hung_grace) {
    run.hung_called = true;
    DISTRI_LOG(ERROR) << "the executor has not returned " << options_.hung_grace.count()
                      << " ms after the watchdog fired: giving up on this process";
    if (options_.on_hung) options_.on_hung();
  }
}

void ActorHost::TaskLoop() {
  while (true) {
    std::shared_ptr<Running> run;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_.load() || pending_.has_value() || !release_kept_.empty(); });
      if (stop_) {
        lock.unlock();
        DropGang("the actor is stopping");
        lock.lock();
        if (!parked_.empty()) {
          DISTRI_LOG(INFO) << "destroying " << parked_.size() << " parked gang channel set(s): the actor is stopping";
        }
        while (!parked_.empty()) {
          DoomLocked(std::move(parked_.front()));
          parked_.pop_front();
        }
        reaper_stop_ = true;
        reaper_cv_.notify_all();
        task_thread_done_ = true;
        wake_->Notify();  // the connection thread flushes the last TaskDone and exits
        return;
      }
      if (release_kept_.empty()) {
        run = std::make_shared<Running>(std::move(*pending_), options_.watchdog);
        pending_.reset();
        running_ = run;
      }
    }
    if (!run) {
      ApplyReleases();
      continue;
    }
    RunTask(run);
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_.reset();
    }
    tasks_finished_++;
  }
}

Result<GangChannelSet*> ActorHost::AcquireGang(const wire::AssignTask& task) {
  if (kept_ && kept_registration_ != registrations_.load()) ParkGang("the actor registered with the head again");
  if (task.gang.size() <= 1) {
    ParkGang("the next task is a gang of one");
    return nullptr;
  }
  const std::string gang = "gang " + task.gang_id.Short();
  if (kept_ && kept_->gang_id() == task.gang_id) {
    if (kept_->rank() != task.rank || kept_->world_size() != static_cast<int>(task.gang.size()) ||
        kept_->backend() != task.channel_backend) {
      const std::string why = "the kept " + gang + " is rank " + std::to_string(kept_->rank()) + "/" +
                              std::to_string(kept_->world_size()) + " over " + kept_->backend() +
                              ", the task asks for rank " + std::to_string(task.rank) + "/" +
                              std::to_string(task.gang.size()) + " over " + task.channel_backend;
      DropGang(why);
      return Status::FailedPrecondition(why);
    }
    if (Status s = kept_->status(); !s.ok()) {
      DropGang("its channels broke while kept");
      return Status::Unavailable("the kept channels of " + gang + " broke while idle: " + s.message());
    }
    gangs_reused_++;
    return kept_.get();
  }
  ParkGang("the next task is of " + gang);
  if (std::find(connected_gangs_.begin(), connected_gangs_.end(), task.gang_id) != connected_gangs_.end()) {
    return Status::FailedPrecondition(gang + ": this actor connected it before and no longer keeps its channels "
                                      "(dropped after a failed or cancelled task, another gang's task or a "
                                      "re-registration); the job needs a new gang");
  }
  connected_gangs_.push_back(task.gang_id);
  if (connected_gangs_.size() > kConnectedGangsRemembered) connected_gangs_.pop_front();
  kept_registration_ = registrations_.load();
  DISTRI_ASSIGN_OR_RETURN(std::unique_ptr<GangChannelSet> made, GangChannelSet::Connect(task, options_.channel));
  gangs_connected_++;
  std::lock_guard<std::mutex> lock(mu_);
  kept_ = std::move(made);
  return kept_.get();
}

void ActorHost::DropGang(const std::string& why) {
  if (!kept_) return;
  DISTRI_LOG(INFO) << "dropping the channels of gang " << kept_->gang_id().Short() << " (" << why << ")";
  executor_->ReleaseGang();  // nothing may refer to the channels once they are gone
  std::unique_ptr<GangChannelSet> set;
  {
    std::lock_guard<std::mutex> lock(mu_);
    release_kept_.erase(kept_->gang_id());
    set = std::move(kept_);
  }
  set.reset();  // aborted sets (every rank aborts) or the process ends: no collective teardown
  gangs_destroyed_++;
}

void ActorHost::ParkGang(const std::string& why) {
  if (!kept_) return;
  executor_->ReleaseGang();  // parked sets are never used again
  std::lock_guard<std::mutex> lock(mu_);
  const GangId id = kept_->gang_id();
  if (release_kept_.erase(id) > 0) {
    // The head's ReleaseGang came first: destroy it now, with the gang's other ranks.
    DISTRI_LOG(INFO) << "releasing the channels of gang " << id.Short() << " (" << why << "; the head released it)";
    DoomLocked(std::move(kept_));
    return;
  }
  DISTRI_LOG(INFO) << "parking the channels of gang " << id.Short() << " (" << why
                   << ") until the head releases the gang";
  parked_.push_back(std::move(kept_));
  if (parked_.size() > options_.max_parked_gangs) {
    DISTRI_LOG(WARNING) << "more than " << options_.max_parked_gangs << " parked gangs: destroying the channels of "
                        << "gang " << parked_.front()->gang_id().Short() << " without the head's ReleaseGang; "
                        << "with NCCL its other ranks may hang in the communicator's teardown if they still "
                        << "hold it (this happens only when the head does not remember the gang, e.g. after "
                        << "a head restart)";
    DoomLocked(std::move(parked_.front()));
    parked_.pop_front();
  }
}

void ActorHost::ApplyReleases() {
  GangId id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool released = kept_ && release_kept_.count(kept_->gang_id()) > 0;
    release_kept_.clear();  // entries only ever name the kept set
    if (!released) return;
    id = kept_->gang_id();
  }
  executor_->ReleaseGang();
  std::lock_guard<std::mutex> lock(mu_);
  DISTRI_LOG(INFO) << "releasing the kept channels of gang " << id.Short() << " (the head released it)";
  DoomLocked(std::move(kept_));
}

void ActorHost::RunTask(const std::shared_ptr<Running>& run) {
  const wire::AssignTask& task = run->task;
  tasks_started_++;
  SetLogRank(static_cast<int>(task.rank));
  const auto t0 = Clock::now();
  const int reused_before = gangs_reused_.load();
  Result<TaskOutput> result = Status::Internal("not run");
  auto acquired = AcquireGang(task);
  if (!acquired.ok()) {
    result = acquired.status();
  } else {
    GangChannelSet* channels = *acquired;
    {
      std::lock_guard<std::mutex> lock(mu_);
      run->channels = channels;
      // A cancel that came while the channels were being built still has to reach them.
      if (run->cancelled && channels != nullptr) channels->Abort(run->cancel_reason);
      run->watchdog.Start(Clock::now(), static_cast<int>(task.job.steps));
      run->watching = true;
    }
    const double connect_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::string how;
    if (channels != nullptr && gangs_reused_.load() != reused_before) {
      how = " (kept channels of gang " + channels->gang_id().Short() + " reused, " +
            std::to_string(channels->group_channels()) + " group channel(s))";
    } else if (channels != nullptr) {
      how = " (channel " + std::string(channels->gang()->backend()) + " of gang " + channels->gang_id().Short() +
            " ready in " + std::to_string(static_cast<int>(connect_ms)) + " ms)";
    }
    DISTRI_LOG(INFO) << "running " << TaskName(task) << how;
    ProgressFn progress = [this, run](int step, int total, const std::string& preview) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        run->watchdog.Step(Clock::now(), step);
      }
      wire::TaskProgress p;
      p.job_id = run->task.job_id;
      p.attempt = run->task.attempt;
      p.rank = run->task.rank;
      p.step = static_cast<uint32_t>(step);
      p.total_steps = static_cast<uint32_t>(total);
      // An oversized preview would make the whole progress unsendable: drop only the preview.
      if (preview.size() <= wire::kMaxPreviewBytes) p.preview = preview;
      Enqueue(std::move(p));
    };
    CancelFn cancelled = [run] { return run->cancelled.load(); };
    if (run->cancelled) {
      result = Status::Cancelled("cancelled before it started");
    } else {
      result = executor_->Run(task, channels, progress, cancelled);
    }
  }
  wire::TaskDone done;
  bool reported = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    run->watching = false;
    run->channels = nullptr;  // the connection thread no longer aborts them; kept or dropped below
    reported = run->reported;
    if (reported) {
      // The watchdog sent TaskDone DeadlineExceeded already.
    } else if (run->cancelled && !result.ok()) {
      // The executor's own error (Aborted channel, Cancelled) is a consequence of the cancel.
      done = DoneFor(task, Status(run->cancel_code, run->cancel_reason));
    } else if (!result.ok()) {
      done = DoneFor(task, result.status());
    } else {
      done = DoneFor(task, Status::Ok());
      done.format = result->format;
      done.image = std::move(result->image);
      done.width = result->width;
      done.height = result->height;
      done.denoise_ms = result->denoise_ms;
      done.decode_ms = result->decode_ms;
    }
  }
  // Kept only after a success on intact channels and the same registration (the head keeps
  // its record of this gang under the same rule: docs/runtime-design.md, "Kept gangs").
  if (reported) {
    DropGang("the watchdog reported the task");
  } else if (done.error_code != 0) {
    DropGang("the task did not succeed");
  } else if (kept_ && kept_->aborted()) {
    DropGang("its channels were aborted");
  } else if (kept_ && kept_registration_ != registrations_.load()) {
    ParkGang("the actor registered with the head again");
  }
  ApplyReleases();  // a ReleaseGang of the set this task used came meanwhile
  if (reported) {
    DISTRI_LOG(WARNING) << TaskName(task) << " returned after the watchdog reported it: "
                        << (result.ok() ? std::string("OK") : result.status().ToString()) << " (dropped)";
    SetLogRank(-1);
    return;
  }
  const double total_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (done.error_code == 0) {
    DISTRI_LOG(INFO) << TaskName(task) << " done in " << static_cast<int>(total_ms) << " ms"
                     << (done.image.empty() ? "" : " (" + std::to_string(done.image.size()) + " bytes of image)");
  } else {
    DISTRI_LOG(WARNING) << TaskName(task) << " failed after " << static_cast<int>(total_ms)
                        << " ms: " << StatusCodeName(static_cast<StatusCode>(done.error_code)) << ": "
                        << done.error_message;
  }
  Enqueue(std::move(done));
  SetLogRank(-1);
}

void ActorHost::ConnectionLoop() {
  bool registered = false;
  // RegisterActor requests of the current round (since the head was lost): an answer to any of
  // them registers us, so a slow answer is not thrown away for a retry sent meanwhile.
  uint64_t first_register_request = 0, register_request = 0;
  auto next_register = Clock::now();
  auto heartbeat_interval = milliseconds(1000);
  auto next_heartbeat = Clock::now();
  uint64_t sequence = 0;
  // Every event (heartbeat, progress, result) sent since the last registration, by request id.
  // An Error FailedPrecondition / NotFound answering any of them means the head does not know
  // this connection (it restarted, or declared us dead): everything sent on the lost
  // registration may have been refused or lost with the old connection, so every result among
  // them is queued again and goes out once the head has registered us again. Which event is
  // refused first (a progress or the result itself) depends on timing and does not matter.
  // A result is resent once (a head that refuses it again has its reasons); the head accepts a
  // duplicate result (at-least-once).
  struct SentEvent {
    std::optional<wire::TaskDone> done;
  };
  std::map<uint64_t, SentEvent> sent_events;
  uint64_t last_forgotten_request = 0;  // events up to this id belonged to a lost registration
  std::set<std::pair<JobId, uint32_t>> resent_results;  // (job, attempt) resent once already
  auto remember = [&](uint64_t id, std::optional<wire::TaskDone> done) {
    sent_events.emplace(id, SentEvent{std::move(done)});
    while (sent_events.size() > 256) sent_events.erase(sent_events.begin());
  };
  std::deque<std::pair<Outgoing, Clock::time_point>> unsent;
  auto lost_head = [&](const std::string& why) {
    if (!registered) return;  // already registering again: keep the retry schedule
    DISTRI_LOG(WARNING) << "lost the head (" << why << "); registering again";
    registered = false;
    next_register = Clock::now();
    first_register_request = 0;
    // Results sent on the lost registration go out again after registering, oldest first.
    std::vector<wire::TaskDone> again;
    for (auto& [id, event] : sent_events) {
      last_forgotten_request = std::max(last_forgotten_request, id);
      if (event.done && resent_results.insert({event.done->job_id, event.done->attempt}).second) {
        again.push_back(std::move(*event.done));
      }
    }
    sent_events.clear();
    for (auto it = again.rbegin(); it != again.rend(); ++it) {
      DISTRI_LOG(INFO) << "will resend the result of job " << it->job_id.Short() << " attempt " << it->attempt
                       << " after registering";
      unsent.emplace_front(std::move(*it), Clock::now());
    }
  };
  std::optional<Clock::time_point> flush_deadline;

  while (true) {
    const bool stopping = stop_.load();
    if (stopping && task_thread_done_.load() && !flush_deadline) {
      flush_deadline = Clock::now() + std::chrono::seconds(2);
    }
    // Drained before the outbox is taken: whatever is queued after this wakes the next wait.
    wake_->Drain();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& m : outbox_) unsent.emplace_back(std::move(m), Clock::now());
      outbox_.clear();
    }
    // Stopping: wait for the task thread's last TaskDone, then flush it (bounded).
    if (flush_deadline && Clock::now() > *flush_deadline) break;
    if (stopping && task_thread_done_.load() && (unsent.empty() || !registered)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (outbox_.empty()) break;
    }
    const auto now = Clock::now();
    if (!registered && !stopping && now >= next_register) {
      next_register = now + options_.register_retry;
      wire::RegisterActor reg;
      reg.actor_id = options_.actor_id;
      reg.node_id = options_.node_id;
      reg.gpu_index = options_.gpu_index;
      reg.pid = static_cast<uint32_t>(getpid());
      reg.model = options_.model;
      reg.device = options_.device;
      auto id = socket_->Send(reg, options_.send_timeout);
      if (id.ok()) {
        register_request = *id;
        if (first_register_request == 0) first_register_request = *id;
      } else {
        DISTRI_LOG(DEBUG) << "RegisterActor not sent: " << id.status().ToString();
      }
    }
    if (registered && !stopping && now >= next_heartbeat) {
      next_heartbeat = now + heartbeat_interval;
      wire::Heartbeat hb{.sequence = ++sequence, .unix_time_ms = UnixTimeMs(), .busy_actors = busy() ? 1u : 0u};
      auto id = socket_->Send(hb, options_.send_timeout);
      if (!id.ok()) {
        lost_head(id.status().message());
      } else {
        remember(*id, std::nullopt);
      }
    }
    // Task messages go out only once registered: the head knows actors by their connection.
    while (registered && !unsent.empty()) {
      auto& [message, queued] = unsent.front();
      const bool is_done = std::holds_alternative<wire::TaskDone>(message);
      if (is_done && Clock::now() - queued > kDoneLifetime) {
        DISTRI_LOG(WARNING) << "dropping a TaskDone the head did not take for " << kDoneLifetime.count() << " s";
        unsent.pop_front();
        continue;
      }
      auto id = std::visit([&](const auto& m) { return socket_->Send(m, options_.send_timeout); }, message);
      if (!id.ok()) {
        if (!is_done) unsent.pop_front();
        lost_head(id.status().message());
        break;
      }
      remember(*id, is_done ? std::optional<wire::TaskDone>(std::get<wire::TaskDone>(message)) : std::nullopt);
      unsent.pop_front();
    }
    // Progress that could not be sent is stale by now; results are kept.
    if (!registered) {
      std::erase_if(unsent, [](const auto& e) { return std::holds_alternative<wire::TaskProgress>(e.first); });
    }
    CheckWatchdog();
    // Sleep until a message from the head, a wake (a queued message, Stop, the task thread's
    // exit) or the next timed duty: watchdog check, heartbeat, registration retry, flush deadline.
    auto wait_until = Clock::now() + options_.poll_interval;
    if (registered && !stopping) wait_until = std::min(wait_until, next_heartbeat);
    if (!registered && !stopping) wait_until = std::min(wait_until, next_register);
    if (flush_deadline) wait_until = std::min(wait_until, *flush_deadline);
    // The task thread is gone and the last messages were just sent (or the head is lost): the
    // top of the loop exits; only a message already received is still read.
    if (stopping && task_thread_done_.load()) wait_until = Clock::now();
    const auto wait = std::chrono::ceil<milliseconds>(std::max(wait_until - Clock::now(), Clock::duration::zero()));
    auto received = socket_->ReceiveOrWoken(wait, wake_->fd());
    if (!received.ok()) {
      if (received.status().code() != StatusCode::kDeadlineExceeded) {
        DISTRI_LOG(WARNING) << "bad message from the head: " << received.status().ToString();
      }
      continue;
    }
    if (!*received) continue;  // woken: send what was queued
    const wire::Envelope* in = &**received;
    switch (in->type) {
      case wire::MessageType::kActorRegistered: {
        if (registered || first_register_request == 0 || in->request_id < first_register_request ||
            in->request_id > register_request) {
          break;  // an answer to a RegisterActor of an earlier round
        }
        auto reg = wire::Open<wire::ActorRegistered>(*in);
        if (!reg.ok()) {
          DISTRI_LOG(WARNING) << "bad ActorRegistered: " << reg.status().ToString();
          break;
        }
        registered = true;
        registrations_++;
        heartbeat_interval = milliseconds(std::max<uint32_t>(reg->heartbeat_interval_ms, 10));
        next_heartbeat = Clock::now() + heartbeat_interval;
        DISTRI_LOG(INFO) << "registered with the head " << options_.head << " as actor " << options_.actor_id.Short()
                         << " (" << options_.device << ", model " << options_.model << ")";
        break;
      }
      case wire::MessageType::kAssignTask: {
        auto task = wire::Open<wire::AssignTask>(*in);
        if (!task.ok()) {
          DISTRI_LOG(WARNING) << "bad AssignTask: " << task.status().ToString();
          break;
        }
        HandleAssign(*task);
        break;
      }
      case wire::MessageType::kCancelTask: {
        auto cancel = wire::Open<wire::CancelTask>(*in);
        if (!cancel.ok()) {
          DISTRI_LOG(WARNING) << "bad CancelTask: " << cancel.status().ToString();
          break;
        }
        HandleCancel(*cancel);
        break;
      }
      case wire::MessageType::kReleaseGang: {
        auto release = wire::Open<wire::ReleaseGang>(*in);
        if (!release.ok()) {
          DISTRI_LOG(WARNING) << "bad ReleaseGang: " << release.status().ToString();
          break;
        }
        HandleRelease(*release);
        break;
      }
      case wire::MessageType::kError: {
        auto err = wire::Open<wire::ActorRegistered>(*in);
        const std::string why = err.status().ToString();
        const bool not_registered = err.status().code() == StatusCode::kFailedPrecondition ||
                                    err.status().code() == StatusCode::kNotFound;
        if (first_register_request != 0 && in->request_id >= first_register_request &&
            in->request_id <= register_request) {
          DISTRI_LOG(ERROR) << "the head refused RegisterActor: " << why << " (retrying)";
        } else if (auto it = sent_events.find(in->request_id); it != sent_events.end() && not_registered) {
          lost_head("it answered " + std::string(it->second.done ? "a TaskDone" : "an event") + " with " + why);
        } else if (not_registered && in->request_id <= last_forgotten_request) {
          // Refused like an earlier event of the same lost registration: already handled.
          DISTRI_LOG(DEBUG) << "the head also refused request " << in->request_id << ": " << why;
        } else {
          DISTRI_LOG(WARNING) << "the head answered request " << in->request_id << " with " << why;
        }
        break;
      }
      default:
        DISTRI_LOG(DEBUG) << "ignoring " << wire::MessageTypeName(in->type) << " from the head";
    }
  }
  socket_.reset();
}

}  // namespace distri::worker
