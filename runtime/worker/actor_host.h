// The actor host: everything an actor process does besides computing (docs/runtime-design.md).
// It connects to the head as an actor, registers (RegisterActor) and heartbeats, receives
// AssignTask, builds the gang's channel, runs a TaskExecutor on its task thread, streams
// TaskProgress after every step and TaskDone at the end, handles CancelTask, and runs the
// per-step watchdog (step_watchdog.h).
//
//   MyExecutor exec;                           // loaded model etc.
//   DISTRI_ASSIGN_OR_RETURN(auto host, ActorHost::Create(options, &exec));
//   DISTRI_RETURN_IF_ERROR(host->Start());
//   ... until SIGTERM ...
//   host->Stop();
//
// Task rules:
// - One task at a time. An AssignTask for another (job, attempt) while a task runs means the
//   head considers this actor free (it restarted, or gave up on the running attempt): the
//   running task is cancelled (TaskDone Cancelled) and the new one starts after it. A repeated
//   AssignTask of the running or queued (job, attempt) is ignored.
// - CancelTask of the running (job, attempt): the gang's channels are aborted, the executor
//   sees cancelled() and the host answers TaskDone Cancelled. Of a queued task: dropped,
//   TaskDone Cancelled. Of anything else: ignored.
// - Kept gangs (docs/runtime-design.md, "Kept gangs"): after a task of a gang of >= 2 that
//   succeeded, the host keeps that gang's channels (GangChannelSet: the gang channel and the
//   CFG group channels) and passes them to the next task of the same gang id and rank without
//   a new rendezvous. A failed, cancelled or watchdog-reported task, an aborted set and Stop
//   destroy them at once (ReleaseGang first; their channels were aborted on every rank, or the
//   process ends). A task of another gang or a gang of one, or a registration with the head
//   since they were made, parks them instead (ReleaseGang first): not reused, not destroyed,
//   because NCCL tears a communicator down collectively (every rank must finalize it
//   together). A kept or parked set is destroyed when the head sends ReleaseGang naming it
//   (handled on the connection thread, the destruction itself on a helper thread: it neither
//   waits for the running task nor blocks heartbeats), or unilaterally, with a WARNING, when
//   more than max_parked_gangs are parked (only without a head that remembers the gang). A
//   task naming a gang id this actor connected before but no longer keeps fails at once with
//   FailedPrecondition (the head then re-runs the job on a new gang).
// - Watchdog: when no step completes within its bound the channels are aborted and TaskDone
//   DeadlineExceeded is sent at once (whatever the executor returns later is dropped). If the
//   executor has still not returned hung_grace later, on_hung runs (distri-worker exits so that
//   the node agent restarts it).
// - TaskDone survives a short head outage (resent until it goes out, for up to a minute);
//   TaskProgress is dropped when it cannot be sent.
// - Head restarts: an Error (FailedPrecondition / NotFound) answering any event sent since the
//   last registration (Heartbeat, TaskProgress, TaskDone), or failing sends, make the host
//   register again; every TaskDone sent on the lost registration is resent once right after
//   registering, whichever event the head refused first (docs/runtime-design.md, "Node agent
//   and actor processes").
//
// Threading: Start/Stop from one thread. Three threads run inside: the connection thread (owns
// the socket, heartbeats, watchdog checks), the task thread (runs the executor) and the reaper
// (destroys released gang channel sets). The connection thread sleeps until a message from the
// head, a message queued for the head (woken through a WakeupFd, so progress and results go out
// at once), its next heartbeat or registration retry, or poll_interval.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>

#include "runtime/common/ids.h"
#include "runtime/common/status.h"
#include "runtime/common/wakeup_fd.h"
#include "runtime/wire/curve_keys.h"
#include "runtime/wire/messages.h"
#include "runtime/worker/gang_channel.h"
#include "runtime/worker/step_watchdog.h"
#include "runtime/worker/task_executor.h"

namespace distri::wire {
class DealerSocket;
class ZmqContext;
}  // namespace distri::wire

namespace distri::worker {

struct ActorHostOptions {
  std::string head;         // the head's ROUTER endpoint, "tcp://host:port" (required)
  std::string keys_dir;     // node.key and head.pub (unless the explicit keys below are set)
  std::optional<wire::CurveKeyPair> keys;  // overrides <keys_dir>/node.key
  std::string head_public_key;             // overrides <keys_dir>/head.pub (Z85)
  ActorId actor_id;         // required (the node agent's choice)
  NodeId node_id;           // required
  int gpu_index = -1;       // CUDA ordinal on the node, -1 for a CPU actor
  std::string model;        // model name reported to the head (required)
  std::string device;       // "cuda:0", "cpu" (required)
  WatchdogOptions watchdog;
  GangChannelOptions channel;
  std::chrono::milliseconds register_retry{1000};
  std::chrono::milliseconds send_timeout{500};
  std::chrono::milliseconds hung_grace{30'000};
  // The longest the connection thread sleeps with nothing to do: how late the watchdog may
  // notice an expired bound (queued messages, head messages and heartbeats wake it on time).
  std::chrono::milliseconds poll_interval{10};
  std::function<void()> on_hung;  // runs on the connection thread; may exit the process
  // Parked gang channel sets kept for the head's ReleaseGang; beyond this many the oldest is
  // destroyed unilaterally (its peers may hang in NCCL's teardown: a WARNING says so).
  size_t max_parked_gangs = 4;
};

class ActorHost {
 public:
  // `executor` is not owned and must outlive the host. Errors name the missing option or the
  // unreadable key file.
  static Result<std::unique_ptr<ActorHost>> Create(ActorHostOptions options, TaskExecutor* executor);
  ~ActorHost();  // Stop()

  // Connects and starts both threads. FailedPrecondition when called twice.
  Status Start();
  // Cancels the running task (it reports TaskDone Cancelled if the head is reachable), waits
  // for the executor to return (a hung executor blocks it: that is what on_hung is for), and
  // closes the connection. Idempotent.
  void Stop();

  // Counters for tests and logs.
  int registrations() const { return registrations_.load(); }
  int tasks_started() const { return tasks_started_.load(); }
  int tasks_finished() const { return tasks_finished_.load(); }
  // Gang channel sets connected (a rendezvous each) and tasks that reused a kept one.
  int gangs_connected() const { return gangs_connected_.load(); }
  int gangs_reused() const { return gangs_reused_.load(); }
  // Gang channel sets parked now (awaiting ReleaseGang) and destroyed so far (any reason).
  int gangs_parked() const;
  int gangs_destroyed() const { return gangs_destroyed_.load(); }
  bool busy() const;

 private:
  // The task being run, shared by the task thread and the connection thread under mu_.
  struct Running {
    wire::AssignTask task;
    std::atomic<bool> cancelled{false};
    std::string cancel_reason;            // mu_
    StatusCode cancel_code = StatusCode::kCancelled;  // mu_
    GangChannelSet* channels = nullptr;   // mu_; set while the executor may use them
    StepWatchdog watchdog;                // mu_
    bool watching = false;                // mu_; the executor runs (watchdog armed)
    bool reported = false;                // mu_; TaskDone already sent (watchdog)
    std::optional<std::chrono::steady_clock::time_point> hung_since;  // mu_
    bool hung_called = false;             // mu_
    explicit Running(wire::AssignTask t, WatchdogOptions w) : task(std::move(t)), watchdog(w) {}
  };
  using Outgoing = std::variant<wire::TaskProgress, wire::TaskDone>;

  ActorHost(ActorHostOptions options, TaskExecutor* executor);
  void ConnectionLoop();
  void TaskLoop();
  void RunTask(const std::shared_ptr<Running>& run);
  // The channels for `task` (null for a gang of one): the kept set when the task names its
  // gang and rank, else a new one (the kept set is dropped first). Task thread only.
  Result<GangChannelSet*> AcquireGang(const wire::AssignTask& task);
  // Destroys the kept set now, telling the executor first (ReleaseGang). Task thread only.
  void DropGang(const std::string& why);
  // Parks the kept set (ReleaseGang first): it waits for the head's ReleaseGang. Task thread.
  void ParkGang(const std::string& why);
  // Destroys the kept set if the head released it (release_kept_). Task thread, no task running.
  void ApplyReleases();
  // ReleaseGang from the head: a parked set goes to the reaper at once, the kept one through
  // the task thread (the executor may refer to it). Connection thread.
  void HandleRelease(const wire::ReleaseGang& release);
  // Hands `set` to the reaper. mu_ held.
  void DoomLocked(std::unique_ptr<GangChannelSet> set);
  void ReaperLoop();
  void HandleAssign(const wire::AssignTask& task);
  void HandleCancel(const wire::CancelTask& cancel);
  void CheckWatchdog();
  // Sets the cancel flag and aborts the gang's channels. mu_ held.
  void CancelLocked(Running& run, StatusCode code, const std::string& reason);
  // Queues `message` for the head from the task thread.
  void Enqueue(Outgoing message);
  // Queues `message` and wakes the connection thread to send it. mu_ held.
  void QueueLocked(Outgoing message);
  static wire::TaskDone DoneFor(const wire::AssignTask& task, const Status& status);

  const ActorHostOptions options_;
  TaskExecutor* const executor_;
  std::shared_ptr<wire::ZmqContext> context_;
  std::unique_ptr<wire::DealerSocket> socket_;  // connection thread only
  // Wakes the connection thread: outbox_ grew, stop_ or task_thread_done_ was set. Made by
  // Start before the threads.
  std::unique_ptr<WakeupFd> wake_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<wire::AssignTask> pending_;  // mu_; the next task to run
  std::shared_ptr<Running> running_;         // mu_
  std::deque<Outgoing> outbox_;              // mu_
  std::atomic<bool> stop_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> task_thread_done_{false};
  std::atomic<int> registrations_{0};
  std::atomic<int> tasks_started_{0};
  std::atomic<int> tasks_finished_{0};
  std::atomic<int> gangs_connected_{0};
  std::atomic<int> gangs_reused_{0};
  std::atomic<int> gangs_destroyed_{0};
  // The kept gang's channels: written by the task thread under mu_ (read by it unlocked, by
  // the connection thread under mu_). Task thread only: the registration count when they were
  // made (a registration since then parks them) and the gang ids connected so far (the last
  // kConnectedGangsRemembered), to tell "no longer kept" from "new".
  std::unique_ptr<GangChannelSet> kept_;
  int kept_registration_ = 0;
  std::deque<GangId> connected_gangs_;
  std::deque<std::unique_ptr<GangChannelSet>> parked_;  // mu_; oldest first
  std::set<GangId> release_kept_;                       // mu_; ReleaseGang of kept_ not yet applied
  std::deque<std::unique_ptr<GangChannelSet>> doomed_;  // mu_; for the reaper
  bool reaper_stop_ = false;                            // mu_; drain doomed_ and exit
  std::condition_variable reaper_cv_;
  std::thread reaper_thread_;
  std::thread connection_thread_;
  std::thread task_thread_;
};

}  // namespace distri::worker
