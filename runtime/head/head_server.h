// HeadServer: the head of a distri cluster (docs/runtime-design.md), as a class with
// Start/Stop that the distri-head binary, tests and the C ABI's embedded cluster wrap.
//
// One server thread owns everything: it receives every control-plane message on the ROUTER
// socket (clients, node agents, actors), updates the tables, the queue and the job store,
// schedules gangs and sends tasks. Its managers are separate classes (JobStore, JobQueue,
// NodeTable, ActorTable, GangScheduler, Metrics), each with its own tests.
//
// Message handling:
//   client:  SubmitJob -> JobAccepted (after the job is in SQLite), SubmitJobs -> JobsAccepted
//            (the whole batch in one SQLite transaction and queued before the next schedule),
//            GetJob / CancelJob -> JobStatus, GetJobResult -> JobResult, GetClusterStatus ->
//            ClusterStatus.
//   node:    RegisterNode -> NodeRegistered; Heartbeat; ActorExited (the actor is dead at once).
//   actor:   RegisterActor -> ActorRegistered; Heartbeat; TaskProgress; TaskDone.
//   A Heartbeat from a connection the head does not know (the head restarted) is answered with
//   Error FailedPrecondition: the peer registers again. A message of a type the head never
//   receives (JobAccepted, AssignTask, ...) is answered with Error InvalidArgument. Malformed
//   messages are rejected by the RouterSocket (logged, answered with Error); the head keeps
//   serving either way.
//
// Failures: a dead rank (missed heartbeats, ActorExited, its node dead) or a failed TaskDone
// aborts the attempt: CancelTask goes to the surviving ranks (they stay busy until they
// answer TaskDone) and the job is re-queued with attempt+1 and the same seed, or FAILED after
// max_attempts failed attempts. On restart the head reloads every unfinished job: PENDING ones
// queue again, SCHEDULED/RUNNING ones are re-queued with attempt+1 (at-least-once; a result is
// stored once: the first successful rank 0 of any attempt wins).
//
// Thread-safety: Start/Stop/accessors from one controlling thread.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/channel/tcp_rendezvous.h"
#include "runtime/common/status.h"
#include "runtime/head/actor_table.h"
#include "runtime/head/gang_scheduler.h"
#include "runtime/head/head_options.h"
#include "runtime/head/http_responder.h"
#include "runtime/head/job_queue.h"
#include "runtime/head/job_store.h"
#include "runtime/head/metrics.h"
#include "runtime/head/node_table.h"
#include "runtime/head/version_gate.h"
#include "runtime/wire/router_socket.h"

namespace distri::head {

class HeadServer {
 public:
  // Opens the store (resuming its unfinished jobs), binds the control plane, the rendezvous
  // server and the metrics endpoint, and starts the server thread. Errors name what failed:
  // keys (files, naming them), the store, an address in use.
  static Result<std::unique_ptr<HeadServer>> Start(HeadOptions options);
  // Stops the thread and closes everything. Idempotent; the destructor calls it.
  void Stop();
  ~HeadServer();
  HeadServer(const HeadServer&) = delete;
  HeadServer& operator=(const HeadServer&) = delete;

  // The control-plane address actually bound ("tcp://127.0.0.1:40123").
  const std::string& endpoint() const { return endpoint_; }
  // The metrics port (0 when off) and the rendezvous address handed to gangs.
  uint16_t metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }
  const std::string& rendezvous_address() const { return rendezvous_address_; }
  // The head's public key (Z85; empty when insecure).
  const std::string& public_key() const { return public_key_; }
  // Messages rejected as malformed, connections refused by the authenticator.
  uint64_t rejected_messages() const;
  uint64_t refused_connections() const;
  const Metrics& metrics() const { return metrics_; }

 private:
  struct ActiveJob {
    JobRecord rec;
    GangId gang_id;
    std::vector<wire::GangMember> gang;   // empty while PENDING
    std::vector<int64_t> rank_step;       // -1: no report yet
    std::vector<bool> rank_done;
    uint32_t step = 0;
    std::chrono::steady_clock::time_point last_step_time{};
    // The latest latent preview rank 0 sent for the current attempt (TaskProgress.preview),
    // and the step it was taken after; memory only (not in SQLite), served by GetJob with
    // with_preview.
    std::string preview;
    uint32_t preview_step = 0;
  };
  using Incoming = wire::RouterSocket::Incoming;

  explicit HeadServer(HeadOptions options);
  Status Init();
  void Run();
  void Dispatch(Incoming& in);
  void Tick();
  int64_t NowMs() const;  // monotonic, for liveness

  // Peers (head_server.cc).
  void OnRegisterNode(const Incoming& in, const wire::RegisterNode& m);
  void OnHeartbeat(const Incoming& in, const wire::Heartbeat& m);
  void OnRegisterActor(const Incoming& in, const wire::RegisterActor& m);
  void OnActorExited(const Incoming& in, const wire::ActorExited& m);
  void OnClusterStatus(const Incoming& in);
  void UpdateMetrics();

  // Jobs (head_jobs.cc).
  Status LoadJobs();
  void OnSubmit(const Incoming& in, const wire::SubmitJob& m);
  void OnSubmitJobs(const Incoming& in, const wire::SubmitJobs& m);
  // InvalidArgument when the cluster cannot run `spec` (ValidateJobSpec, GPUs beyond the alive
  // capacity, a model nobody holds); FailedPrecondition when every alive actor of its model is
  // too old for a field it uses (TooOldForJob, once VersionGateOpen).
  Status CheckSubmittable(const wire::JobSpec& spec) const;
  // The alive actors on alive (or unknown) nodes, as the scheduler sees them.
  std::vector<ActorSlot> AliveSlots() const;
  // Whether the head has run for a liveness timeout: before that, peers may still be
  // registering again after a head restart, so no job is failed for their versions yet.
  bool VersionGateOpen() const;
  // A queued job that can never run: FAILED with `why`, out of the queue and active_.
  void FailQueued(const JobId& job_id, const std::string& why);
  // A PENDING record of a new job of `spec` (fresh id, the seed drawn when absent).
  static JobRecord NewJob(const wire::JobSpec& spec);
  // Queues a job just recorded in the store and starts tracking it.
  void Enqueue(JobRecord rec);
  void OnGetJob(const Incoming& in, const wire::GetJob& m);
  void OnCancel(const Incoming& in, const wire::CancelJob& m);
  void OnGetResult(const Incoming& in, const wire::GetJobResult& m);
  void OnTaskProgress(const Incoming& in, const wire::TaskProgress& m);
  void OnTaskDone(const Incoming& in, const wire::TaskDone& m);
  void Schedule();
  void AssignGang(ActiveJob& job, const Placement& placement);
  void OnActorDied(const ActorId& actor, const std::optional<TaskRef>& task, const std::string& why);
  // Ends the running attempt of `job`: CancelTask to its unfinished ranks; then re-queues it
  // (attempt+1) or, when `failure` made it reach max_attempts, fails it. Erases `job` from
  // active_ when it becomes terminal.
  void AbortAttempt(const JobId& job_id, const std::string& why, bool failure);
  void CancelRanks(const ActiveJob& job, uint32_t attempt);
  // Sends ReleaseGang to every live member of each kept gang broken since the last call
  // (ActorTable::TakeBrokenGangs), so that all ranks tear its channels down together
  // (docs/runtime-design.md, "Kept gangs").
  void ReleaseBrokenGangs();
  void Succeed(ActiveJob& job, const wire::TaskDone& done);
  wire::JobStatus StatusOf(const JobRecord& rec, uint32_t step) const;
  void Persist(const JobRecord& rec);

  HeadOptions options_;
  std::string endpoint_;
  std::string public_key_;
  std::string rendezvous_address_;

  std::unique_ptr<JobStore> store_;
  JobQueue queue_;
  NodeTable nodes_;
  ActorTable actors_;
  GangScheduler scheduler_;
  Metrics metrics_;
  std::map<JobId, ActiveJob> active_;  // every job not in a terminal state

  std::shared_ptr<wire::ZmqContext> context_;
  std::unique_ptr<wire::ZapAuthenticator> auth_;
  std::unique_ptr<wire::RouterSocket> router_;
  std::unique_ptr<channel::TcpRendezvousServer> rendezvous_;
  std::unique_ptr<HttpResponder> metrics_http_;

  std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();
  int64_t last_sweep_ms_ = 0;
  int64_t last_metrics_ms_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace distri::head
