// The node agent (docs/runtime-design.md): registers the node's resources with the head,
// heartbeats, starts one actor process (`distri-worker`) per selected GPU with
// CUDA_VISIBLE_DEVICES=<i> plus `cpu_actors` CPU actors, restarts crashed actors
// (ProcessSupervisor), reports every actor exit to the head (ActorExited) and registers again
// when the head restarts.
//
//   DISTRI_ASSIGN_OR_RETURN(auto agent, NodeAgent::Create(options));
//   DISTRI_RETURN_IF_ERROR(agent->Start());
//   ... until SIGTERM ...
//   agent->Stop();   // SIGTERM to every actor's process group, SIGKILL after the grace period
//
// Actors are started once the head has answered the first RegisterNode (a head that is not up
// yet is retried every register_retry). Each actor slot keeps its actor id across restarts and
// appends its stdout/stderr to <log_dir>/actor-<slot>.log.
//
// Threading: Start/Stop from one thread. The agent runs one thread for the head connection and
// the supervisor's watcher thread (which spawns the actors, so they die with the agent even if
// it is killed with SIGKILL).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/common/ids.h"
#include "runtime/common/status.h"
#include "runtime/node/process_supervisor.h"
#include "runtime/wire/curve_keys.h"
#include "runtime/wire/messages.h"

namespace distri::wire {
class DealerSocket;
class ZmqContext;
}  // namespace distri::wire

namespace distri::node {

// Intra-op CPU threads for each of `actors` actor processes on a node with `usable_cores`:
// the cores shared out evenly, at least one each. The node agent puts this in every actor's
// OMP_NUM_THREADS unless that variable is set already (in the agent's environment or in
// worker_env), as Ray does for its workers: four GPU actors each starting one OpenMP thread
// per core oversubscribe the host, and their small CPU steps (latents to the host, the image to
// RGB) then wait for descheduled threads (tens of ms a job, measured on 4x H200).
int ActorThreads(int usable_cores, int actors);
// The cores this process may run on (its CPU affinity; hardware_concurrency as a fallback).
int UsableCores();

struct NodeAgentOptions {
  std::string head;      // the head's ROUTER endpoint, "tcp://host:port" (required)
  std::string keys_dir;  // reads node.key and head.pub (required); actors get the same dir
  std::string model_dir; // passed to every actor (required)
  std::string gpus = "all";  // SelectGpus syntax: all | none | 0,1
  int cpu_actors = 0;        // CPU actors besides the GPU ones
  RestartPolicy restart;
  std::string log_dir;   // per-actor log files; created if missing (required)
  NodeId node_id;        // nil: a random id
  std::string hostname;  // "": gethostname()
  // The actor executable. "": $DISTRI_WORKER_PATH, else distri-worker next to this executable.
  std::string worker_path;
  std::vector<std::string> worker_args;  // appended to every actor's flags (e.g. --log-level debug)
  std::vector<std::pair<std::string, std::string>> worker_env;  // added to every actor's environment
  std::chrono::milliseconds register_retry{1000};   // RegisterNode resend period until answered
  std::chrono::milliseconds send_timeout{500};      // one send to the head
};

class NodeAgent {
 public:
  // Validates the options, reads the keys, selects the GPUs and builds the actor specs.
  // Errors name the flag or file at fault.
  static Result<std::unique_ptr<NodeAgent>> Create(NodeAgentOptions options);
  ~NodeAgent();  // Stop()

  // Connects to the head and starts the agent's thread. FailedPrecondition when called twice.
  Status Start();
  // Stops every actor (reported to the head as exits with restarting = false), then the
  // head connection. Idempotent.
  void Stop();

  const NodeId& node_id() const { return options_.node_id; }
  const wire::NodeResources& resources() const { return resources_; }
  // The actor id of each slot (GPU actors first, then CPU actors).
  const std::vector<ActorId>& actor_ids() const { return actor_ids_; }
  // Times the head accepted RegisterNode (> 1 after head restarts).
  int registrations() const { return registrations_.load(); }
  // State of the actor processes.
  std::vector<SlotStatus> actors() const { return supervisor_->Snapshot(); }

 private:
  NodeAgent(NodeAgentOptions options, wire::NodeResources resources, wire::CurveKeyPair keys,
            std::string head_public_key);
  void Run();
  // Called on the supervisor's thread: queues an ActorExited for the head.
  void OnActorExit(const ExitEvent& e);

  NodeAgentOptions options_;
  wire::NodeResources resources_;
  wire::CurveKeyPair keys_;
  std::string head_public_key_;
  std::vector<ActorId> actor_ids_;
  std::unique_ptr<ProcessSupervisor> supervisor_;
  std::shared_ptr<wire::ZmqContext> context_;
  std::unique_ptr<wire::DealerSocket> socket_;  // used by thread_ only

  std::mutex mu_;
  std::deque<wire::ActorExited> exits_;  // guarded by mu_; sent by thread_
  std::atomic<bool> stop_{false};
  std::atomic<bool> started_{false};
  std::atomic<int> registrations_{0};
  std::thread thread_;
};

// The actor executable: `configured` if set, else $DISTRI_WORKER_PATH, else distri-worker in
// the folder of this process's executable. NotFound names every place looked at.
Result<std::string> FindWorkerExecutable(const std::string& configured);

}  // namespace distri::node
