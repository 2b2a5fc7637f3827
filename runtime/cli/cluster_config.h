// The cluster YAML of `distri-cluster up` (schema and examples: docs/cluster-config.md,
// configs/*.yaml). Errors name file, line and key ("2gpu.yaml:12:5: nodes[0].gpus: ...").
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/status.h"

namespace distri::cli {

struct HeadConfig {
  std::string host = "127.0.0.1";  // the address nodes and clients use
  std::string bind;                // listen address; default: host
  int port = 7070;
  int metrics_port = -1;           // -1: off
  std::string db;                  // default <state_dir>/head.db
  int heartbeat_ms = 1000;
  int max_attempts = 3;
  std::string placement = "pack";  // pack | spread
};

struct NodeConfig {
  std::string name;                // unique; names the log file (node-<name>.log)
  std::string host = "localhost";  // localhost / 127.0.0.1: started here; else through ssh
  std::string gpus = "none";       // "all", "none" or "0,1"
  int cpu_actors = 0;
  int max_restarts = 3;
  std::string model;               // default: the cluster's model
  // Environment variables for the node's actors (the top-level `env`, then this node's `env`
  // over it), passed as `distri-node --env NAME=VALUE`: what reaches remote actors through ssh
  // (NCCL settings, DISTRI_SDPA_BACKEND, OMP_NUM_THREADS, ...). Sorted by name.
  std::vector<std::pair<std::string, std::string>> env;
  // Remote nodes: the command prefix that runs a shell command on `host`; {host} is replaced
  // and the quoted command is appended ("ssh -o BatchMode=yes {host}").
  std::string ssh = "ssh -o BatchMode=yes {host}";
  std::string remote_bin_dir;      // where distri-node lives there; default: the local bin dir
  std::string remote_keys_dir;     // where the keys are there; default: the local keys dir
  std::string remote_log_dir = "/tmp";
  // Copies the key directory to the remote host before starting ({src}, {host}, {dst}); empty
  // = the keys are already there.
  std::string copy_keys;
  bool IsLocal() const { return host == "localhost" || host == "127.0.0.1" || host == "::1"; }
};

struct ClusterConfig {
  std::string path;                // the YAML file
  std::string cluster_name;
  std::string state_dir;           // default ~/.distri/<cluster_name>
  std::string keys_dir;            // default <state_dir>/keys
  std::string log_dir;             // default <state_dir>/logs
  std::string bin_dir;             // distri-head / distri-node; default: next to distri-cluster
  std::string model;               // model folder the actors load
  std::string log_level = "info";
  HeadConfig head;
  std::vector<NodeConfig> nodes;

  std::string HeadAddress() const { return "tcp://" + head.host + ":" + std::to_string(head.port); }
  std::string StateFile() const { return state_dir + "/cluster.state"; }
};

Result<ClusterConfig> LoadClusterConfig(const std::string& path);
Result<ClusterConfig> ParseClusterConfig(std::string_view text, const std::string& name);

// "~/x" -> "$HOME/x".
std::string ExpandHome(const std::string& path);

}  // namespace distri::cli
