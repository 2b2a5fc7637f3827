// distri-node: the node agent process (docs/runtime-design.md, "Node agent").
//
//   distri-node --head tcp://HOST:PORT --keys DIR --model DIR [--gpus 0,1|all|none]
//               [--cpu-actors N] [--max-restarts N] [--log-dir DIR] [--node-id HEX]
//               [--hostname NAME] [--worker PATH] [--log-level LEVEL] [--env NAME=VALUE ...]
//
// Runs until SIGTERM or SIGINT, then stops its actors (SIGTERM to each actor's process group,
// SIGKILL after 10 s) and exits 0. Exit code 2: bad flags or configuration.
#include <CLI/CLI.hpp>

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "runtime/common/env_var.h"
#include "runtime/common/logging.h"
#include "runtime/node/node_agent.h"

int main(int argc, char** argv) {
  distri::SetLogRole("node");
  CLI::App app{"distri-node: the node agent of a distri cluster (starts and watches the actors of this machine)"};
  distri::node::NodeAgentOptions o;
  std::string node_id, log_level;
  app.add_option("--head", o.head, "The head's address, tcp://HOST:PORT")->required();
  app.add_option("--keys", o.keys_dir, "The cluster's key directory (node.key, head.pub)")->required();
  app.add_option("--model", o.model_dir, "Model folder the actors load (diffusers' layout)")->required();
  app.add_option("--gpus", o.gpus, "GPUs that get an actor: all, none or a list like 0,1")->capture_default_str();
  app.add_option("--cpu-actors", o.cpu_actors, "CPU actors to run besides the GPU ones")->capture_default_str();
  app.add_option("--max-restarts", o.restart.max_restarts, "Restarts of a crashed actor before giving up")
      ->capture_default_str();
  app.add_option("--log-dir", o.log_dir, "Folder for the actor logs (actor-<slot>.log); default $TMPDIR/distri-node-<id>");
  app.add_option("--node-id", node_id, "This node's id (32 hex digits); default random");
  app.add_option("--hostname", o.hostname, "Hostname reported to the head; default gethostname()");
  app.add_option("--worker", o.worker_path, "Actor executable; default $DISTRI_WORKER_PATH or distri-worker next to distri-node");
  app.add_option("--log-level", log_level, "debug, info, warning or error (also passed to the actors)");
  std::vector<std::string> env;
  app.add_option("--env", env, "NAME=VALUE set in every actor's environment (repeatable; the cluster YAML's env)");
  CLI11_PARSE(app, argc, argv);

  for (const std::string& assignment : env) {
    auto kv = distri::ParseEnvAssignment(assignment, "--env");
    if (!kv.ok()) {
      std::cerr << "distri-node: " << kv.status().message() << "\n";
      return 2;
    }
    o.worker_env.push_back(std::move(*kv));
  }

  if (distri::Status s = distri::ApplyLogLevelFlag(log_level); !s.ok()) {
    std::cerr << "distri-node: " << s.message() << "\n";
    return 2;
  }
  if (!log_level.empty()) o.worker_args = {"--log-level", log_level};
  if (!node_id.empty()) {
    auto id = distri::NodeId::ParseHex(node_id);
    if (!id.ok()) {
      std::cerr << "distri-node: --node-id: " << id.status().message() << "\n";
      return 2;
    }
    o.node_id = *id;
  } else {
    o.node_id = distri::NodeId::Random();
  }
  if (o.log_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    o.log_dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/distri-node-" + o.node_id.Short();
  }

  // Every thread inherits this mask; main waits for the signals below with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto agent = distri::node::NodeAgent::Create(o);
  if (!agent.ok()) {
    std::cerr << "distri-node: " << agent.status().ToString() << "\n";
    return 2;
  }
  if (auto s = (*agent)->Start(); !s.ok()) {
    std::cerr << "distri-node: " << s.ToString() << "\n";
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  DISTRI_LOG(INFO) << "signal " << sig << ": stopping the actors";
  (*agent)->Stop();
  return 0;
}
