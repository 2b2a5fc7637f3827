// PeerMonitor: the failure side channel of an NCCL gang. NCCL cannot tell a rank that a peer
// aborted its communicator or that the peer's process died (within one host, NVLink and shared
// memory have no failure detection: the peers' kernels would wait forever), so every rank keeps
// one TCP connection to every other rank, carrying two messages:
//   abort  (kind 'A', reason)   the sender's channel failed or was aborted
//   close  (kind 'C')           the sender destroyed its channel cleanly
// A connection that ends without either (the process died) counts as a failure too. A thread
// per channel watches the connections and also runs a periodic `tick` (NCCL's async error).
// Internal to nccl/; no CUDA or NCCL types.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/channel/deadline.h"
#include "runtime/channel/rendezvous.h"
#include "runtime/channel/socket_util.h"

namespace distri::channel::nccl {

class PeerMonitor {
 public:
  // Listens on `host` (port chosen by the system), publishes "host:port" under
  // "<prefix>/<rank>" of `rendezvous`, connects to every lower rank and accepts every higher
  // one before `deadline`. world_size must be at least 2.
  static Result<std::unique_ptr<PeerMonitor>> Connect(int rank, int world_size,
                                                      Rendezvous& rendezvous,
                                                      const std::string& prefix,
                                                      const std::string& host,
                                                      Clock::time_point deadline);
  ~PeerMonitor();  // Close() if not called
  PeerMonitor(const PeerMonitor&) = delete;
  PeerMonitor& operator=(const PeerMonitor&) = delete;

  // Starts the watching thread. `on_peer_failure` is called once, on that thread, with
  // Unavailable naming the peer and what happened; `tick` every ~20 ms. `device` is made the
  // thread's current CUDA device by `set_device` (the callbacks use CUDA).
  void Start(std::function<void(const Status&)> on_peer_failure, std::function<void()> tick,
             std::function<void()> set_device);
  // Sends the abort message with `reason` to every peer, once (best effort, never blocks for
  // more than ~100 ms per peer). Thread-safe.
  void BroadcastAbort(const std::string& reason);
  // Sends the close message when `clean` (and no abort was sent), stops the thread, closes
  // the connections. Idempotent.
  void Close(bool clean);

 private:
  PeerMonitor(int rank, int world_size) : rank_(rank), world_size_(world_size) {}
  void Run();
  // Reads one message (or the end) from `peer`; returns the failure to report, OK to go on.
  Status ReadFrom(int peer);
  void SendToAll(char kind, const std::string& text);

  const int rank_;
  const int world_size_;
  std::vector<Fd> peers_;  // index = rank; invalid for this rank
  std::mutex send_mu_;
  bool sent_final_ = false;  // an abort or close went out
  int wake_[2] = {-1, -1};   // pipe: Close wakes the thread
  std::thread thread_;
  std::function<void(const Status&)> on_peer_failure_;
  std::function<void()> tick_;
  std::function<void()> set_device_;
  bool closed_ = false;
};

}  // namespace distri::channel::nccl
