// Keeps a fixed set of child processes (the node's actors) running: starts them, watches them,
// restarts the ones that exit with exponential backoff until a slot has used max_restarts,
// and stops them all (SIGTERM to each process group, SIGKILL after a grace period).
//
//   ProcessSupervisor sup(policy, [&](const ExitEvent& e) { report(e); });
//   sup.Add(spec0); sup.Add(spec1);
//   DISTRI_RETURN_IF_ERROR(sup.Start());
//   ...
//   sup.Stop();
//
// Every exit the supervisor did not ask for is a crash (exit code 0 too: an actor is meant to
// run until told to stop) and is restarted, unless the slot has been restarted max_restarts
// times already; then it stays down. A process that has run for `stable_after` without
// exiting gets its restart count reset (an actor that crashes once a week is not retired).
//
// Threading: one watcher thread spawns, polls (every poll_interval) and restarts the
// processes; it also runs `on_exit`, so the callback must not block for long and must not call
// back into the supervisor's Stop. Add before Start only; Snapshot and Stop from any thread.
// Children are spawned from the watcher thread, so they die with it (see actor_process.h).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/node/actor_process.h"

namespace distri::node {

struct RestartPolicy {
  int max_restarts = 5;  // restarts per slot; 0 = never restart
  std::chrono::milliseconds initial_backoff{500};  // before the first restart; doubles each time
  std::chrono::milliseconds max_backoff{30'000};
  std::chrono::milliseconds stable_after{600'000};  // uptime that resets a slot's restart count
  std::chrono::milliseconds poll_interval{50};
  std::chrono::milliseconds stop_grace{10'000};  // SIGTERM -> SIGKILL on Stop
};

// One exit of a supervised process, as reported to on_exit.
struct ExitEvent {
  size_t slot = 0;
  std::string name;
  pid_t pid = -1;
  ExitStatus status;
  bool restarting = false;  // a restart is scheduled (false: the slot gave up, or Stop)
  int restarts = 0;         // restarts of this slot so far (before the scheduled one)
  std::chrono::milliseconds backoff{0};  // delay before the scheduled restart
  bool stopping = false;    // the exit was caused by Stop
};

enum class SlotState { kStarting, kRunning, kBackoff, kFailed, kStopped };
std::string_view SlotStateName(SlotState state);  // "starting", "running", ...

struct SlotStatus {
  std::string name;
  SlotState state = SlotState::kStarting;
  pid_t pid = -1;         // current process, -1 when none
  int restarts = 0;       // restarts since the count was last reset
  int total_restarts = 0; // restarts since Start
  std::optional<ExitStatus> last_exit;
};

class ProcessSupervisor {
 public:
  using ExitCallback = std::function<void(const ExitEvent&)>;
  explicit ProcessSupervisor(RestartPolicy policy, ExitCallback on_exit = nullptr);
  ~ProcessSupervisor();  // Stop()
  ProcessSupervisor(const ProcessSupervisor&) = delete;
  ProcessSupervisor& operator=(const ProcessSupervisor&) = delete;

  // Adds a slot (before Start); returns its index.
  size_t Add(ProcessSpec spec);
  // Starts the watcher thread, which spawns every slot. FailedPrecondition when called twice.
  // A slot that cannot even be spawned (log file not writable) counts as an exit of that slot.
  Status Start();
  // Terminates every process (SIGTERM to its group, SIGKILL after stop_grace), reaps them and
  // joins the watcher. Idempotent; on_exit sees these exits with stopping = true.
  void Stop();

  std::vector<SlotStatus> Snapshot() const;
  // Pid of a slot's current process, -1 when none.
  pid_t pid(size_t slot) const;

 private:
  struct Slot {
    ProcessSpec spec;
    std::optional<ActorProcess> process;
    SlotState state = SlotState::kStarting;
    int restarts = 0;
    int total_restarts = 0;
    std::chrono::steady_clock::time_point restart_at{};
    std::optional<ExitStatus> last_exit;
  };
  void Run();
  void SpawnSlot(size_t index, Slot& slot);  // mu_ held
  void HandleExit(size_t index, Slot& slot, const ExitStatus& status, pid_t pid,
                  std::vector<ExitEvent>* events);  // mu_ held

  const RestartPolicy policy_;
  const ExitCallback on_exit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slots_;  // guarded by mu_
  bool started_ = false;     // guarded by mu_
  bool stop_ = false;        // guarded by mu_
  std::mutex join_mu_;  // serializes concurrent Stop calls
  std::thread watcher_;
};

}  // namespace distri::node
