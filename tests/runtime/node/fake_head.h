// A fake head for the node agent and actor host tests: a CURVE ROUTER on 127.0.0.1 that
// records every message, answers RegisterNode / RegisterActor, answers Heartbeat, TaskProgress
// and TaskDone from connections that never registered with Error FailedPrecondition (as the
// real head does after a restart), and sends whatever a test queues. Restart() rebinds the same port with the same
// keys and forgets every registration, as a restarted head would.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/wire/curve_keys.h"
#include "runtime/wire/messages.h"
#include "runtime/wire/router_socket.h"
#include "runtime/wire/zap_authenticator.h"
#include "runtime/wire/zmq_context.h"

namespace distri::testing {

class FakeHead {
 public:
  struct Received {
    std::string peer;
    wire::Envelope envelope;
    wire::AnyMessage message;
  };

  // Writes head.key, head.pub and node.key into `keys_dir` and starts serving.
  explicit FakeHead(const std::string& keys_dir, uint32_t heartbeat_interval_ms = 50);
  ~FakeHead();

  const std::string& endpoint() const { return endpoint_; }
  // Closes the socket and binds the same port again with fresh state (a head restart).
  void Restart();

  // All messages received so far, in order.
  std::vector<Received> Messages() const;
  // Messages of type M, decoded.
  template <typename M>
  std::vector<M> All() const {
    std::vector<M> out;
    for (const auto& r : Messages()) {
      if (const M* m = std::get_if<M>(&r.message)) out.push_back(*m);
    }
    return out;
  }
  // The routing id of the peer that last sent a message of type `type`.
  std::string PeerOf(wire::MessageType type) const;
  // Sends `message` to `peer` from the server thread.
  template <typename M>
  void SendTo(const std::string& peer, const M& message) {
    auto env = wire::MakeEnvelope(message, 0, "head");
    std::lock_guard<std::mutex> lock(mu_);
    outbox_.push_back({peer, env.value()});
  }
  // When set, RegisterActor is not answered (the test answers itself).
  void set_answer_register_actor(bool on) { answer_register_actor_ = on; }
  int errors_sent() const { return errors_sent_.load(); }
  // CURVE handshakes the current socket accepted (a peer that connected since Bind/Restart).
  uint64_t handshakes() const { return handshakes_.load(); }

 private:
  void Bind(uint16_t port);
  void Serve();

  std::string keys_dir_;
  uint32_t heartbeat_interval_ms_;
  wire::CurveKeyPair head_keys_, node_keys_;
  std::shared_ptr<wire::ZmqContext> ctx_;
  std::unique_ptr<wire::ZapAuthenticator> auth_;
  std::unique_ptr<wire::RouterSocket> router_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> answer_register_actor_{true};
  std::atomic<int> errors_sent_{0};
  std::atomic<uint64_t> handshakes_{0};  // copied from auth_ by the server thread
  mutable std::mutex mu_;
  std::vector<Received> received_;                                // guarded by mu_
  std::deque<std::pair<std::string, wire::Envelope>> outbox_;     // guarded by mu_
  std::set<std::string> registered_peers_;                        // server thread only
  std::thread thread_;
};

// Polls `pred` every 10 ms until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A fresh directory under /tmp.
std::string MakeTempDir(const std::string& prefix);

}  // namespace distri::testing
