// One child process of the node agent (an actor, or in tests any command).
//
//   ProcessSpec spec{.name = "actor-0", .executable = "/usr/bin/distri-worker", .args = {...},
//                    .env = {{"CUDA_VISIBLE_DEVICES", "0"}}, .log_path = "/var/log/distri/actor-0.log"};
//   DISTRI_ASSIGN_OR_RETURN(ActorProcess p, ActorProcess::Spawn(spec));
//   ... p.Poll() each tick; p.Terminate(grace) on shutdown ...
//
// The child runs in its own process group (its pid is the group id), so signals reach
// everything it starts. It gets SIGKILL when the thread that spawned it exits
// (PR_SET_PDEATHSIG): a node agent killed with SIGKILL leaves no actor behind, so spawn from a
// thread that lives as long as the agent (ProcessSupervisor's watcher thread does). stdout and
// stderr are appended to log_path; stdin is /dev/null; no other descriptor of the parent is
// inherited.
//
// Not thread-safe: use one ActorProcess from one thread. Destroying a process that has not
// been reaped kills its group with SIGKILL and reaps it (no zombies, no orphans).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/status.h"

namespace distri::node {

struct ProcessSpec {
  std::string name;        // for logs ("actor-0 (gpu 0)")
  std::string executable;  // absolute path, or a name looked up in PATH
  std::vector<std::string> args;  // argv[1..]; argv[0] is the executable
  // Set (or with an empty value: set to "") on top of this process's environment.
  std::vector<std::pair<std::string, std::string>> env;
  // Where stdout and stderr go (created 0644 if missing, appended to). Empty: inherit ours.
  std::string log_path;
};

// How a process ended.
struct ExitStatus {
  int exit_code = -1;  // when it exited, else -1
  int signal = 0;      // when a signal killed it, else 0
  // "exit code 3", "signal 9 (Killed)"
  std::string Describe() const;
};

class ActorProcess {
 public:
  // Forks and execs `spec`. Fails (IoError) when the log file cannot be opened or fork fails.
  // A missing executable is not an error here: the child exits with code 127 after writing
  // the reason to its log.
  static Result<ActorProcess> Spawn(const ProcessSpec& spec);

  ActorProcess(ActorProcess&& o) noexcept;
  ActorProcess& operator=(ActorProcess&& o) noexcept;
  ActorProcess(const ActorProcess&) = delete;
  ActorProcess& operator=(const ActorProcess&) = delete;
  ~ActorProcess();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !exit_.has_value(); }
  std::chrono::steady_clock::time_point started_at() const { return started_at_; }

  // Reaps the child if it has exited (never blocks). Returns its exit status once it has
  // exited (and on every later call), nullopt while it runs.
  std::optional<ExitStatus> Poll();

  // Sends `signal` to the child's process group (no-op once reaped).
  void Signal(int signal);

  // SIGTERM to the group, waits up to `grace` for the child to exit, then SIGKILL to the
  // group; returns the exit status (after reaping).
  ExitStatus Terminate(std::chrono::milliseconds grace);

 private:
  ActorProcess(pid_t pid, std::chrono::steady_clock::time_point started_at)
      : pid_(pid), started_at_(started_at) {}
  void KillAndReap();

  pid_t pid_ = -1;
  std::chrono::steady_clock::time_point started_at_{};
  std::optional<ExitStatus> exit_;
};

}  // namespace distri::node
