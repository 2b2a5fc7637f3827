#include "runtime/node/process_supervisor.h"

#include <signal.h>

#include <algorithm>

#include "runtime/common/logging.h"

namespace distri::node {

using Clock = std::chrono::steady_clock;

std::string_view SlotStateName(SlotState state) {
  switch (state) {
    case SlotState::kStarting: return "starting";
    case SlotState::kRunning: return "running";
    case SlotState::kBackoff: return "backoff";
    case SlotState::kFailed: return "failed";
    case SlotState::kStopped: return "stopped";
  }
  return "unknown";
}

ProcessSupervisor::ProcessSupervisor(RestartPolicy policy, ExitCallback on_exit)
    : policy_(policy), on_exit_(std::move(on_exit)) {}

ProcessSupervisor::~ProcessSupervisor() { Stop(); }

size_t ProcessSupervisor::Add(ProcessSpec spec) {
  std::lock_guard<std::mutex> lock(mu_);
  DISTRI_CHECK(!started_, "ProcessSupervisor::Add after Start");
  Slot slot;
  slot.spec = std::move(spec);
  slots_.push_back(std::move(slot));
  return slots_.size() - 1;
}

Status ProcessSupervisor::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Status::FailedPrecondition("ProcessSupervisor::Start called twice");
    if (stop_) return Status::FailedPrecondition("ProcessSupervisor::Start after Stop");
    started_ = true;
  }
  watcher_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void ProcessSupervisor::SpawnSlot(size_t index, Slot& slot) {
  auto p = ActorProcess::Spawn(slot.spec);
  if (!p.ok()) {
    DISTRI_LOG(ERROR) << slot.spec.name << ": cannot start: " << p.status().ToString();
    slot.process.reset();
    slot.state = SlotState::kStarting;
    return;
  }
  DISTRI_LOG(INFO) << slot.spec.name << " (slot " << index << "): started pid " << p->pid()
                   << (slot.spec.log_path.empty() ? "" : ", log " + slot.spec.log_path);
  slot.process.emplace(std::move(*p));
  slot.state = SlotState::kRunning;
}

void ProcessSupervisor::HandleExit(size_t index, Slot& slot, const ExitStatus& status, pid_t pid,
                                   std::vector<ExitEvent>* events) {
  ExitEvent e;
  e.slot = index;
  e.name = slot.spec.name;
  e.pid = pid;
  e.status = status;
  slot.last_exit = status;
  if (slot.process.has_value() &&
      Clock::now() - slot.process->started_at() >= policy_.stable_after) {
    slot.restarts = 0;  // it ran long enough: this is a new, independent crash
  }
  slot.process.reset();
  e.restarts = slot.restarts;
  if (slot.restarts < policy_.max_restarts) {
    auto backoff = policy_.initial_backoff;
    for (int i = 0; i < slot.restarts && backoff < policy_.max_backoff; ++i) backoff *= 2;
    backoff = std::min(backoff, policy_.max_backoff);
    e.restarting = true;
    e.backoff = backoff;
    slot.state = SlotState::kBackoff;
    slot.restart_at = Clock::now() + backoff;
    DISTRI_LOG(WARNING) << slot.spec.name << " (pid " << pid << ") exited with " << status.Describe()
                        << "; restart " << (slot.restarts + 1) << " of " << policy_.max_restarts << " in "
                        << backoff.count() << " ms";
  } else {
    slot.state = SlotState::kFailed;
    DISTRI_LOG(ERROR) << slot.spec.name << " (pid " << pid << ") exited with " << status.Describe()
                      << "; not restarting (max_restarts " << policy_.max_restarts << " used)";
  }
  events->push_back(std::move(e));
}

void ProcessSupervisor::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (size_t i = 0; i < slots_.size(); ++i) SpawnSlot(i, slots_[i]);
  while (!stop_) {
    std::vector<ExitEvent> events;
    const auto now = Clock::now();
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      if (slot.state == SlotState::kRunning) {
        const pid_t pid = slot.process->pid();
        if (auto st = slot.process->Poll()) HandleExit(i, slot, *st, pid, &events);
      } else if (slot.state == SlotState::kStarting && !slot.process.has_value()) {
        // Spawn itself failed: treat it as an exit so the restart budget bounds the retries.
        HandleExit(i, slot, ExitStatus{.exit_code = 127}, -1, &events);
      } else if (slot.state == SlotState::kBackoff && now >= slot.restart_at) {
        ++slot.restarts;
        ++slot.total_restarts;
        SpawnSlot(i, slot);
      }
    }
    if (!events.empty() && on_exit_) {
      lock.unlock();
      for (const auto& e : events) on_exit_(e);
      lock.lock();
      continue;
    }
    cv_.wait_for(lock, policy_.poll_interval, [this] { return stop_; });
  }
  // Stop: SIGTERM every group first, then wait for all of them together.
  for (auto& slot : slots_) {
    if (slot.process.has_value()) slot.process->Signal(SIGTERM);
  }
  std::vector<ExitEvent> events;
  const auto deadline = Clock::now() + policy_.stop_grace;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (!slot.process.has_value()) {
      if (slot.state != SlotState::kFailed) slot.state = SlotState::kStopped;
      continue;
    }
    const pid_t pid = slot.process->pid();
    const auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
                               std::chrono::milliseconds(0));
    ExitStatus st = slot.process->Terminate(left);
    slot.process.reset();
    slot.last_exit = st;
    slot.state = SlotState::kStopped;
    DISTRI_LOG(INFO) << slot.spec.name << " (pid " << pid << ") stopped: " << st.Describe();
    events.push_back(ExitEvent{.slot = i, .name = slot.spec.name, .pid = pid, .status = st,
                               .restarting = false, .restarts = slot.restarts, .stopping = true});
  }
  lock.unlock();
  if (on_exit_) {
    for (const auto& e : events) on_exit_(e);
  }
}

void ProcessSupervisor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  std::lock_guard<std::mutex> join_lock(join_mu_);
  if (watcher_.joinable()) watcher_.join();
}

std::vector<SlotStatus> ProcessSupervisor::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SlotStatus> out;
  out.reserve(slots_.size());
  for (const auto& s : slots_) {
    out.push_back(SlotStatus{.name = s.spec.name, .state = s.state,
                             .pid = s.process.has_value() ? s.process->pid() : -1,
                             .restarts = s.restarts, .total_restarts = s.total_restarts,
                             .last_exit = s.last_exit});
  }
  return out;
}

pid_t ProcessSupervisor::pid(size_t slot) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (slot >= slots_.size() || !slots_[slot].process.has_value()) return -1;
  return slots_[slot].process->pid();
}

}  // namespace distri::node
