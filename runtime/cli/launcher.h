// What `distri-cluster up` / `down` do: cluster keys, starting the head and the node agents
// (locally, or on remote hosts through the YAML's ssh template), and the state file that
// lets `down` stop them.
//
// State file (<state_dir>/cluster.state), one process per line:
//   <role> <name> <host> <pid>        role: head | node; host "local" for local processes;
//                                     pid: the process id on that host
#pragma once

#include <string>
#include <vector>

#include "runtime/cli/cluster_config.h"
#include "runtime/common/status.h"

namespace distri::cli {

// Creates the key files of a cluster in `dir` when head.key is missing: head.key, head.pub,
// client.key, node.key and authorized_keys (client + node public keys); mode 0600, directory
// 0700. *created says whether keys were made. Existing keys are left alone.
Status EnsureClusterKeys(const std::string& dir, bool* created);

struct ProcessEntry {
  std::string role;  // "head" or "node"
  std::string name;
  std::string host;  // "local" or the remote host
  int pid = 0;
};
Status WriteState(const std::string& path, const std::vector<ProcessEntry>& entries);
Result<std::vector<ProcessEntry>> ReadState(const std::string& path);

// Starts the head, waits until it answers, then starts every node agent. `bin_dir` holds
// distri-head and distri-node. Fails (and stops what it started) when a process cannot start;
// FailedPrecondition when the state file says the cluster is already up.
Result<std::vector<ProcessEntry>> ClusterUp(const ClusterConfig& config, const std::string& bin_dir);
// Stops the node agents (SIGTERM, then SIGKILL after 15 s) and then the head; removes the
// state file. OK when nothing was running.
Status ClusterDown(const ClusterConfig& config);

// The node agent's command line for `node` (what up runs, locally or through ssh).
std::vector<std::string> NodeCommand(const ClusterConfig& config, const NodeConfig& node, const std::string& bin_dir);
std::vector<std::string> HeadCommand(const ClusterConfig& config, const std::string& bin_dir);

}  // namespace distri::cli
