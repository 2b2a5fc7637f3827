// distri-head: the head process of a distri cluster (docs/runtime-design.md).
//
//   distri-head --bind tcp://0.0.0.0:7070 --db /var/lib/distri/head.db --keys /etc/distri/keys
//               --metrics-port 9090 --log-level info
//
// Runs until SIGINT or SIGTERM. Exit status 0 after a clean stop, 1 when it cannot start
// (the reason is logged), 2 for bad flags.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

#include "runtime/common/logging.h"
#include "runtime/head/head_server.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  distri::SetLogRole("head");
  distri::head::HeadOptions o;
  std::string log_level;
  std::string placement = "pack";
  bool insecure = false;
  CLI::App app{"distri-head: the head of a distri cluster (scheduler, job store, control plane)"};
  app.add_option("--bind", o.bind, "Control-plane address (ZeroMQ)")->capture_default_str();
  app.add_option("--db", o.db_path, "SQLite job store (created when missing)")->capture_default_str();
  app.add_option("--keys", o.keys_dir, "Key directory: head.key and authorized_keys (distri-cluster up writes them)");
  app.add_flag("--insecure", insecure, "No CURVE authentication or encryption (local tests only)");
  app.add_option("--metrics-port", o.metrics_port, "Prometheus endpoint port (-1: off, 0: any free port)")
      ->capture_default_str();
  app.add_option("--metrics-host", o.metrics_host, "Prometheus endpoint address")->capture_default_str();
  app.add_option("--advertise-host", o.advertise_host,
                 "Host the actors reach the gang rendezvous at (default: the bind host, or this hostname)");
  app.add_option("--rendezvous-port", o.rendezvous_port, "Gang rendezvous port (0: any free port)")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", o.heartbeat_interval_ms, "Heartbeat interval asked of nodes and actors")
      ->capture_default_str();
  app.add_option("--missed-heartbeats", o.missed_heartbeats, "Missed heartbeats after which a peer is dead")
      ->capture_default_str();
  app.add_option("--max-attempts", o.max_attempts, "Failed attempts after which a job is FAILED")
      ->capture_default_str();
  app.add_option("--cancel-timeout-ms", o.cancel_timeout_ms,
                 "How long a rank sent CancelTask stays busy without answering before it is free again")
      ->capture_default_str();
  app.add_option("--placement", placement, "Gang placement: pack (one node first) or spread")
      ->check(CLI::IsMember({"pack", "spread"}))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warning or error (default: $DISTRI_LOG_LEVEL or info)");
  CLI11_PARSE(app, argc, argv);

  if (distri::Status s = distri::ApplyLogLevelFlag(log_level); !s.ok()) {
    std::cerr << "distri-head: " << s.message() << "\n";
    return 2;
  }
  o.allow_insecure = insecure;
  o.scheduler.strategy =
      placement == "spread" ? distri::head::PlacementStrategy::kSpread : distri::head::PlacementStrategy::kPack;
  if (!insecure && o.keys_dir.empty()) {
    std::cerr << "distri-head: --keys DIR is required (or --insecure for local tests)\n";
    return 2;
  }

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  distri::Result<std::unique_ptr<distri::head::HeadServer>> head = distri::head::HeadServer::Start(o);
  if (!head.ok()) {
    DISTRI_LOG(ERROR) << "distri-head: cannot start: " << head.status().ToString();
    return 1;
  }
  // Tests and distri-cluster read the bound address from this line.
  std::cout << "distri-head listening on " << (*head)->endpoint() << std::endl;
  while (!g_stop) pause();
  DISTRI_LOG(INFO) << "distri-head: stopping";
  (*head)->Stop();
  return 0;
}
