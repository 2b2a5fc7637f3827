// A ZAP (ZeroMQ Authentication Protocol, RFC 27) handler that admits CURVE clients whose
// public key is in an allow-list, and refuses and logs all others.
//
// libzmq asks the ZAP handler bound at inproc://zeromq.zap.01 *in the server socket's
// context* about every CURVE handshake. Start the authenticator before binding a CURVE server
// in the same ZmqContext (RouterSocket::Bind insists on it): without a handler, libzmq would
// admit any client that knows the server's public key.
//
// Threading: one background thread answers ZAP requests; Allow/Revoke/IsAllowed and the
// counters may be called from any thread. Refusals are logged at WARNING, at most once per
// 10 s per key (a refused client reconnects in a loop), with the number of attempts.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/wire/zmq_context.h"

namespace distri::wire {

class ZapAuthenticator {
 public:
  // Binds the ZAP endpoint in `context` and starts answering. `allowed_public_keys` are Z85
  // (each validated: InvalidArgument names the bad one). Fails with AlreadyExists when the
  // context already has a ZAP handler, FailedPrecondition without CURVE support.
  static Result<std::unique_ptr<ZapAuthenticator>> Start(std::shared_ptr<ZmqContext> context,
                                                         const std::vector<std::string>& allowed_public_keys);
  // Stops the thread (within ~100 ms) and unbinds; later handshakes in the context then fail.
  ~ZapAuthenticator();
  ZapAuthenticator(const ZapAuthenticator&) = delete;
  ZapAuthenticator& operator=(const ZapAuthenticator&) = delete;

  Status Allow(const std::string& public_key_z85);
  void Revoke(const std::string& public_key_z85);
  bool IsAllowed(const std::string& public_key_z85) const;

  const std::shared_ptr<ZmqContext>& context() const { return context_; }
  // Handshakes admitted / refused since Start.
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  ZapAuthenticator(std::shared_ptr<ZmqContext> context, void* socket);
  void Run();
  // Decides one request (frames as received) and fills the reply frames.
  std::vector<std::string> Answer(const std::vector<std::string>& request);
  void LogRefusal(const std::string& key, const std::string& address, const std::string& why);

  std::shared_ptr<ZmqContext> context_;
  void* socket_;  // ZMQ_REP bound to the ZAP endpoint; used only by thread_ after Start
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  mutable std::mutex mu_;
  std::set<std::string> allowed_;  // guarded by mu_
  struct RefusalLog {
    int64_t last_log_ms = 0;
    uint64_t unreported = 0;
  };
  std::map<std::string, RefusalLog> refusal_log_;  // only touched by thread_
  std::thread thread_;
};

}  // namespace distri::wire
