// ActorTable: the GPU/CPU actors known to the head, their liveness and what each is running.
//
// An actor is idle after RegisterActor, busy from AssignTask until its TaskDone for that task
// (or its death), and dead after `missed_heartbeats` silent heartbeat intervals (Sweep), an
// ActorExited from its node, or its node's death. A dead actor that registers again (the node
// agent restarted it) is idle again. A busy actor the head sent CancelTask is "cancelling" until
// its TaskDone; one that does not answer within the cancel timeout is released (ExpireCancels).
// Times are milliseconds of a caller-chosen monotonic clock.
//
// Kept gangs (docs/runtime-design.md, "Kept gangs"): an actor whose TaskDone for a task of a
// gang of >= 2 succeeded keeps that gang (`kept_gang`), as the actor keeps its channels. Every
// other event clears it: another assignment, a failed or cancelled task (CancelSent clears it
// at once), an expired cancel, re-registration, the death of the actor or of any other member
// of the gang (also one that died before its own TaskDone). Clearing an actor's kept gang other
// than by reusing it breaks that gang: it is cleared from every member and recorded for
// TakeBrokenGangs (the head then sends ReleaseGang to every live member, so that all ranks
// tear the channels down together). An actor of a protocol minor version older than
// kKeptGangsMinor keeps no gang (its build destroys its channels after every task and knows no
// ReleaseGang), so no gang with it as a member is ever reused.
// Not thread-safe (the head's server thread).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/common/ids.h"
#include "runtime/head/gang_record.h"
#include "runtime/wire/actor_messages.h"
#include "runtime/wire/cluster_messages.h"
#include "runtime/wire/message_type.h"

namespace distri::head {

// The protocol minor version that brought kept gangs and ReleaseGang (docs/runtime-design.md,
// "Kept gangs").
inline constexpr uint8_t kKeptGangsMinor = 3;

// The task an actor runs: one rank of one attempt of a job.
struct TaskRef {
  JobId job_id;
  uint32_t attempt = 0;
  uint32_t rank = 0;
  bool operator==(const TaskRef&) const = default;
};

struct ActorEntry {
  ActorId id;
  NodeId node_id;
  int32_t gpu_index = -1;
  uint32_t pid = 0;
  std::string model;
  std::string device;
  std::string peer;  // ROUTER routing id of its connection
  // The protocol minor version of its RegisterActor's envelope (the build it runs): the
  // scheduler never gives it a job using a JobSpec field it does not know
  // (runtime/wire/field_versions.h).
  uint8_t wire_minor = wire::kProtocolVersionMinor;
  int64_t last_seen_ms = 0;
  wire::ActorState state = wire::ActorState::kIdle;
  std::optional<TaskRef> task;  // set while busy
  std::optional<int64_t> cancel_sent_ms;  // busy, and CancelTask of `task` went out then
  std::optional<GangRecord> task_gang;    // the gang of `task` (busy)
  std::optional<GangRecord> kept_gang;    // idle after a successful gang task: it keeps this gang
};

class ActorTable {
 public:
  ActorTable(int64_t heartbeat_interval_ms, int missed_heartbeats)
      : timeout_ms_(heartbeat_interval_ms * missed_heartbeats) {}

  // Adds or revives an actor: idle, no task, new connection, the protocol minor version its
  // RegisterActor announced. Returns the task it had when it was busy before (a
  // re-registration while the head thought it busy: that task is lost).
  std::optional<TaskRef> Register(const wire::RegisterActor& m, const std::string& peer, int64_t now_ms,
                                  uint8_t wire_minor = wire::kProtocolVersionMinor);
  // A heartbeat (or any message) on connection `peer`: the actor, or nullopt when unknown.
  std::optional<ActorId> Touch(const std::string& peer, int64_t now_ms);
  // Alive actors silent for longer than the timeout become dead; returns them with the task
  // each was running.
  std::vector<std::pair<ActorId, std::optional<TaskRef>>> Sweep(int64_t now_ms);
  // Marks one actor dead; returns its task if it was busy. No-op (nullopt) for unknown/dead.
  std::optional<TaskRef> MarkDead(const ActorId& id);
  // Every alive actor of a node (its node died); returns them with their tasks.
  std::vector<std::pair<ActorId, std::optional<TaskRef>>> MarkNodeDead(const NodeId& node);

  // Busy with `task` of gang `gang` (the actor must be alive). Clears its kept gang.
  void Assign(const ActorId& id, const TaskRef& task, std::optional<GangRecord> gang = std::nullopt);
  // Idle again if its current task is `task`; false otherwise (stale TaskDone: nothing
  // changes). `succeeded`: its TaskDone was OK; then it keeps the task's gang when that had
  // >= 2 ranks, no CancelTask went out for the task and the actor is of kKeptGangsMinor or
  // later, else it keeps none.
  bool Release(const ActorId& id, const TaskRef& task, bool succeeded);
  // CancelTask of its current task went out at `now_ms` (the first one counts); the task's
  // gang will not be kept (the actor aborts its channels). No-op unless the actor is busy
  // with `task`.
  void CancelSent(const ActorId& id, const TaskRef& task, int64_t now_ms);
  // Busy actors whose CancelTask is unanswered for more than `timeout_ms` become idle (the
  // next AssignTask supersedes whatever they still run; a hung one exits through its
  // watchdog); returns them with the task they were released from.
  std::vector<std::pair<ActorId, TaskRef>> ExpireCancels(int64_t now_ms, int64_t timeout_ms);

  // The kept gangs broken since the last call (each once), in the order they broke.
  std::vector<GangRecord> TakeBrokenGangs();

  const ActorEntry* Find(const ActorId& id) const;
  const ActorEntry* FindByPeer(const std::string& peer) const;
  std::vector<const ActorEntry*> All() const;
  size_t CountAlive(const std::string& model) const;  // "" = any model
  size_t CountInState(wire::ActorState state, bool gpu_only) const;

 private:
  // Clears e's kept gang from every actor that keeps it and records it as broken.
  void BreakKept(ActorEntry& e);

  int64_t timeout_ms_;
  std::map<ActorId, ActorEntry> actors_;
  std::vector<GangRecord> broken_;
  // Gang ids broken so far (the last kBrokenRemembered): a member whose TaskDone for such a
  // gang comes after the break does not keep it (its channels were released).
  std::set<GangId> broken_ids_;
  std::deque<GangId> broken_order_;
};

}  // namespace distri::head
