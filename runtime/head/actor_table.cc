#include "runtime/head/actor_table.h"

#include <algorithm>

#include <utility>

namespace distri::head {

std::optional<TaskRef> ActorTable::Register(const wire::RegisterActor& m, const std::string& peer, int64_t now_ms,
                                            uint8_t wire_minor) {
  ActorEntry& e = actors_[m.actor_id];
  std::optional<TaskRef> lost = e.state == wire::ActorState::kBusy ? e.task : std::nullopt;
  e.id = m.actor_id;
  e.node_id = m.node_id;
  e.gpu_index = m.gpu_index;
  e.pid = m.pid;
  e.model = m.model;
  e.device = m.device;
  e.peer = peer;
  e.wire_minor = wire_minor;
  e.last_seen_ms = now_ms;
  e.state = wire::ActorState::kIdle;
  e.task.reset();
  e.cancel_sent_ms.reset();
  e.task_gang.reset();
  BreakKept(e);  // a new process, or one that parked its channels on registering
  return lost;
}

std::optional<ActorId> ActorTable::Touch(const std::string& peer, int64_t now_ms) {
  for (auto& [id, e] : actors_) {
    if (e.peer == peer && e.state != wire::ActorState::kDead) {
      e.last_seen_ms = now_ms;
      return id;
    }
  }
  return std::nullopt;
}

std::vector<std::pair<ActorId, std::optional<TaskRef>>> ActorTable::Sweep(int64_t now_ms) {
  std::vector<std::pair<ActorId, std::optional<TaskRef>>> died;
  for (auto& [id, e] : actors_) {
    if (e.state != wire::ActorState::kDead && now_ms - e.last_seen_ms > timeout_ms_) {
      died.emplace_back(id, MarkDead(id));
    }
  }
  return died;
}

std::optional<TaskRef> ActorTable::MarkDead(const ActorId& id) {
  auto it = actors_.find(id);
  if (it == actors_.end() || it->second.state == wire::ActorState::kDead) return std::nullopt;
  std::optional<TaskRef> task = it->second.task;
  it->second.state = wire::ActorState::kDead;
  it->second.task.reset();
  it->second.cancel_sent_ms.reset();
  it->second.task_gang.reset();
  BreakKept(it->second);
  // A member that dies before its own TaskDone (still busy with the gang's task) kept nothing,
  // but the members that finished keep the gang with a dead peer: break it for them too, so
  // that they are told to release its channels now rather than at their next task.
  for (auto& [other_id, other] : actors_) {
    if (other.kept_gang && std::find(other.kept_gang->members.begin(), other.kept_gang->members.end(), id) !=
                               other.kept_gang->members.end()) {
      BreakKept(other);
    }
  }
  return task;
}

std::vector<std::pair<ActorId, std::optional<TaskRef>>> ActorTable::MarkNodeDead(const NodeId& node) {
  std::vector<std::pair<ActorId, std::optional<TaskRef>>> died;
  for (auto& [id, e] : actors_) {
    if (e.node_id == node && e.state != wire::ActorState::kDead) died.emplace_back(id, MarkDead(id));
  }
  return died;
}

void ActorTable::Assign(const ActorId& id, const TaskRef& task, std::optional<GangRecord> gang) {
  auto it = actors_.find(id);
  if (it == actors_.end() || it->second.state == wire::ActorState::kDead) return;
  it->second.state = wire::ActorState::kBusy;
  it->second.task = task;
  it->second.cancel_sent_ms.reset();
  // Reusing the kept gang keeps it whole (every member gets a task of it); anything else
  // breaks it.
  if (it->second.kept_gang && gang && gang->gang_id == it->second.kept_gang->gang_id) {
    it->second.kept_gang.reset();
  } else {
    BreakKept(it->second);
  }
  it->second.task_gang = std::move(gang);
}

bool ActorTable::Release(const ActorId& id, const TaskRef& task, bool succeeded) {
  auto it = actors_.find(id);
  if (it == actors_.end() || it->second.state != wire::ActorState::kBusy || !it->second.task) return false;
  if (it->second.task->job_id != task.job_id || it->second.task->attempt != task.attempt) return false;
  ActorEntry& e = it->second;
  e.state = wire::ActorState::kIdle;
  e.task.reset();
  e.cancel_sent_ms.reset();
  BreakKept(e);  // none while busy
  if (succeeded && e.wire_minor >= kKeptGangsMinor && e.task_gang && e.task_gang->members.size() >= 2 &&
      !broken_ids_.contains(e.task_gang->gang_id)) {
    e.kept_gang = std::move(e.task_gang);
  }
  e.task_gang.reset();
  return true;
}

void ActorTable::CancelSent(const ActorId& id, const TaskRef& task, int64_t now_ms) {
  auto it = actors_.find(id);
  if (it == actors_.end() || it->second.state != wire::ActorState::kBusy || it->second.task != task) return;
  if (!it->second.cancel_sent_ms) it->second.cancel_sent_ms = now_ms;
  it->second.task_gang.reset();
}

std::vector<std::pair<ActorId, TaskRef>> ActorTable::ExpireCancels(int64_t now_ms, int64_t timeout_ms) {
  std::vector<std::pair<ActorId, TaskRef>> released;
  for (auto& [id, e] : actors_) {
    if (e.state != wire::ActorState::kBusy || !e.task || !e.cancel_sent_ms) continue;
    if (now_ms - *e.cancel_sent_ms <= timeout_ms) continue;
    released.emplace_back(id, *e.task);
    e.state = wire::ActorState::kIdle;
    e.task.reset();
    e.cancel_sent_ms.reset();
    e.task_gang.reset();
    BreakKept(e);  // none while busy
  }
  return released;
}

void ActorTable::BreakKept(ActorEntry& e) {
  if (!e.kept_gang) return;
  GangRecord gang = std::move(*e.kept_gang);
  e.kept_gang.reset();
  for (auto& [id, other] : actors_) {
    if (other.kept_gang && other.kept_gang->gang_id == gang.gang_id) other.kept_gang.reset();
  }
  constexpr size_t kBrokenRemembered = 4096;
  if (broken_ids_.insert(gang.gang_id).second) {
    broken_order_.push_back(gang.gang_id);
    if (broken_order_.size() > kBrokenRemembered) {
      broken_ids_.erase(broken_order_.front());
      broken_order_.pop_front();
    }
  }
  broken_.push_back(std::move(gang));
}

std::vector<GangRecord> ActorTable::TakeBrokenGangs() { return std::exchange(broken_, {}); }

const ActorEntry* ActorTable::Find(const ActorId& id) const {
  auto it = actors_.find(id);
  return it == actors_.end() ? nullptr : &it->second;
}

const ActorEntry* ActorTable::FindByPeer(const std::string& peer) const {
  const ActorEntry* found = nullptr;
  for (const auto& [id, e] : actors_) {
    if (e.peer != peer) continue;
    if (e.state != wire::ActorState::kDead) return &e;
    found = &e;
  }
  return found;
}

std::vector<const ActorEntry*> ActorTable::All() const {
  std::vector<const ActorEntry*> out;
  for (const auto& [id, e] : actors_) out.push_back(&e);
  return out;
}

size_t ActorTable::CountAlive(const std::string& model) const {
  size_t n = 0;
  for (const auto& [id, e] : actors_) {
    if (e.state != wire::ActorState::kDead && (model.empty() || e.model == model)) ++n;
  }
  return n;
}

size_t ActorTable::CountInState(wire::ActorState state, bool gpu_only) const {
  size_t n = 0;
  for (const auto& [id, e] : actors_) {
    if (e.state == state && (!gpu_only || e.gpu_index >= 0)) ++n;
  }
  return n;
}

}  // namespace distri::head
