// A real cluster for the integration tests: keys, a `distri-head`, and node agents
// (`distri-node`, each with CPU actors running `distri-worker`) on two "hosts".
//
// Hosts are Linux network namespaces joined to the head's namespace by veth pairs when this
// process may create them (root with CAP_NET_ADMIN; `ip` installed), else every process runs on
// loopback. Which one is used is printed (and Mode() says it). Processes are started with
// node::ActorProcess (own process group, logs in the cluster's folder, SIGKILL if the test
// dies), so nothing outlives the test.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/client/client.h"
#include "runtime/common/ids.h"
#include "runtime/node/actor_process.h"
#include "runtime/wire/cluster_messages.h"

namespace distri::testing {

// Binaries, from the build (compile definitions set by tests/integration/tests.cmake).
struct Binaries {
  std::string distri;  // the single-process CLI (model init, generate)
  std::string head;
  std::string node;
  std::string worker;
};
Binaries BuiltBinaries();

// Two network namespaces "<tag>a"/"<tag>b" on one LAN: a bridge in the root namespace
// (10.231.<k>.1, where the head listens) with a veth into each namespace (10.231.<k>.2 and .3),
// so the hosts reach the head and each other (UCX between the ranks of a gang) without IP
// forwarding.
class NetnsHosts {
 public:
  // Null (with the reason in *why) when namespaces cannot be made here.
  static std::unique_ptr<NetnsHosts> Create(std::string* why);
  NetnsHosts(const NetnsHosts&) = delete;
  NetnsHosts& operator=(const NetnsHosts&) = delete;
  ~NetnsHosts();
  const std::string& ns(int host) const { return names_[host]; }
  // The head's address as seen from the hosts.
  const std::string& head_ip() const { return head_ip_; }
  // The host's network interface (inside its namespace).
  const std::string& device(int host) const { return devices_[host]; }

 private:
  NetnsHosts() = default;
  void Destroy();
  std::string names_[2];
  std::string veths_[2];    // root ends
  std::string devices_[2];  // namespace ends
  std::string bridge_;
  std::string head_ip_;
  bool owned_ = false;
};

class TestCluster {
 public:
  struct Options {
    int nodes = 2;
    int cpu_actors_per_node = 1;
    int max_restarts = 3;
    uint32_t heartbeat_ms = 200;
    int missed_heartbeats = 5;
  };
  // Makes the folder, keys and (if possible) the namespaces; starts nothing.
  TestCluster(std::string dir, std::string model_dir, Options options);
  ~TestCluster();  // stops everything

  // "netns" or "loopback".
  std::string Mode() const { return hosts_ ? "netns" : "loopback"; }

  void StartHead();
  // SIGKILL (crash = true) or SIGTERM, then wait.
  void StopHead(bool crash);
  void StartNode(int index);
  void KillNode(int index);  // SIGKILL: its actors die with it
  // SIGTERM (the agent stops its actors first); returns how the agent exited.
  node::ExitStatus StopNode(int index);
  // Waits until the head lists `actors` idle actors (or fails the test after `timeout`).
  bool WaitForIdleActors(size_t actors, std::chrono::milliseconds timeout);

  client::Client& client();
  Result<wire::ClusterStatus> Status() { return client().GetClusterStatus(); }

  const NodeId& node_id(int index) const { return node_ids_[index]; }
  // The pid of actor `actor_id` (read from its log: the line where it registered).
  pid_t ActorPid(const ActorId& actor_id) const;
  // Index of the node that hosts `actor_id`, -1 when unknown.
  int NodeOf(const ActorId& actor_id) const;
  // The log files of everything (for failure messages).
  std::string Logs() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string HeadAddressFor(int node) const;

  std::string dir_, model_dir_;
  Options options_;
  Binaries bin_;
  std::unique_ptr<NetnsHosts> hosts_;
  uint16_t port_ = 0;
  std::optional<node::ActorProcess> head_;
  std::vector<std::optional<node::ActorProcess>> nodes_;
  std::vector<NodeId> node_ids_;
  std::unique_ptr<client::Client> client_;
};

// A free TCP port on 0.0.0.0 (bound then released).
uint16_t FreePort();
// Runs a command to completion (logs to `log`); returns its exit code (-1 on a signal).
int RunToCompletion(const std::string& exe, const std::vector<std::string>& args, const std::string& log,
                    const std::vector<std::pair<std::string, std::string>>& env = {});

}  // namespace distri::testing
