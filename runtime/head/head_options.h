// Options of the head (HeadServer and the distri-head binary's flags).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/head/gang_scheduler.h"
#include "runtime/wire/curve_keys.h"

namespace distri::head {

struct HeadOptions {
  // Control plane (ZeroMQ ROUTER): "tcp://0.0.0.0:7070"; port * picks a free one (endpoint()).
  std::string bind = "tcp://0.0.0.0:7070";
  // SQLite job store; ":memory:" keeps nothing across restarts (tests only).
  std::string db_path = "distri-head.db";

  // CURVE: keys_dir holds head.key (our key pair) and authorized_keys (who may connect).
  // Explicit keys override the files. allow_insecure: no CURVE at all (in-process tests).
  std::string keys_dir;
  std::optional<wire::CurveKeyPair> keys;
  std::vector<std::string> authorized_keys;
  bool allow_insecure = false;

  // Prometheus text endpoint (GET /metrics): -1 = off, 0 = a free port (metrics_port()).
  int metrics_port = -1;
  std::string metrics_host = "0.0.0.0";

  // Gang rendezvous (channel::TcpRendezvousServer). The host actors connect to is
  // advertise_host; empty = the bind address's host, or this machine's hostname when that
  // is a wildcard. rendezvous_host is where it listens (empty = the bind address's host).
  std::string advertise_host;
  std::string rendezvous_host;
  uint16_t rendezvous_port = 0;

  // Liveness: peers heartbeat every heartbeat_interval; missing `missed_heartbeats` in a row
  // marks them dead.
  uint32_t heartbeat_interval_ms = 1000;
  int missed_heartbeats = 3;
  // A rank sent CancelTask stays busy until its TaskDone; after this long without one the head
  // treats it as free (its next AssignTask supersedes the old task on the actor).
  uint32_t cancel_timeout_ms = 60'000;
  // Failed attempts (errors, dead ranks) after which a job is FAILED.
  uint32_t max_attempts = 3;
  SchedulerOptions scheduler;
  // The head's version, reported in ClusterStatus.
  std::string version = "0.1.0";
};

}  // namespace distri::head
