// The server side of the control plane: a ZeroMQ ROUTER socket that receives envelopes from
// many DEALER clients and answers each on its connection.
//
//   auto ctx = ZmqContext::Create().value();
//   auto auth = ZapAuthenticator::Start(ctx, authorized_public_keys).value();
//   auto server = RouterSocket::Bind(ctx, {.endpoint = "tcp://0.0.0.0:7070", .sender_id = "head",
//                                          .curve = head_keys, .authenticator = auth.get()}).value();
//   while (running) {
//     auto in = server->Receive(std::chrono::milliseconds(200));
//     if (!in.ok()) continue;                        // DeadlineExceeded: nothing came
//     std::visit(..., in->message);                  // already decoded and validated
//     server->Reply(*in, wire::JobStatus{...});
//   }
//
// Untrusted input never reaches the caller: a message that is not one frame, not a valid
// envelope, of another major version, or whose payload does not decode is logged (WARNING,
// naming the peer and the error), answered with an Error (request id of the envelope when it
// could be read, else 0; never in answer to an Error), counted in rejected(), and Receive
// keeps waiting. Frames over kMaxEnvelopeBytes make libzmq drop the connection.
//
// Handshake failures (wrong server key, no CURVE, refused by the ZAP handler) are read from
// a socket monitor during Receive, counted in handshake_failures() and logged.
//
// Not thread-safe: use one RouterSocket from one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/common/status.h"
#include "runtime/wire/curve_keys.h"
#include "runtime/wire/messages.h"
#include "runtime/wire/zap_authenticator.h"
#include "runtime/wire/zmq_context.h"
#include "runtime/wire/zmq_socket.h"

namespace distri::wire {

struct RouterOptions {
  // Where to listen: "tcp://0.0.0.0:7070"; "tcp://127.0.0.1:*" picks a free port (endpoint()).
  std::string endpoint;
  // Sender id of the envelopes this socket sends ("head").
  std::string sender_id = "server";
  // The server's key pair: the socket is a CURVE server. Required unless allow_insecure.
  std::optional<CurveKeyPair> curve;
  // Admits clients by public key; must be running in the same ZmqContext. Required with curve.
  ZapAuthenticator* authenticator = nullptr;
  // No CURVE at all (no encryption, no authentication): only for in-process tests.
  bool allow_insecure = false;
  // How long Send may block when a client's queue is full (then DeadlineExceeded).
  std::chrono::milliseconds send_timeout{1000};
};

class RouterSocket {
 public:
  // Errors: InvalidArgument (options), FailedPrecondition (CURVE without an authenticator of
  // this context, or libzmq without CURVE), Unavailable (cannot bind: address in use, ...).
  static Result<std::unique_ptr<RouterSocket>> Bind(std::shared_ptr<ZmqContext> context, RouterOptions options);
  ~RouterSocket();

  // The address actually bound, e.g. "tcp://127.0.0.1:40123".
  const std::string& endpoint() const { return endpoint_; }

  struct Incoming {
    std::string peer;      // ZeroMQ routing id of the client's connection (opaque); pass to Send
    std::string peer_key;  // Z85 public key the ZAP handler admitted ("" without CURVE)
    Envelope envelope;     // header fields; the payload is cleared once decoded into `message`
    AnyMessage message;    // the decoded, validated message
  };

  // The next valid message, waiting up to `timeout` (DeadlineExceeded when none came).
  Result<Incoming> Receive(std::chrono::milliseconds timeout);

  // Sends `message` to `peer` (Unavailable when that client is gone). `request_id` is the id of
  // the request answered, or 0.
  template <typename M>
  Status Send(std::string_view peer, const M& message, uint64_t request_id) {
    DISTRI_ASSIGN_OR_RETURN(Envelope e, MakeEnvelope(message, request_id, options_.sender_id));
    return SendEnvelope(peer, e);
  }
  // Answers `request` with `message` (same peer, same request id).
  template <typename M>
  Status Reply(const Incoming& request, const M& message) {
    return Send(request.peer, message, request.envelope.request_id);
  }
  // Answers `request` with an Error carrying `error`'s code and message.
  Status ReplyError(const Incoming& request, const Status& error) {
    return Send(request.peer, Error::FromStatus(error), request.envelope.request_id);
  }
  Status SendEnvelope(std::string_view peer, const Envelope& envelope);

  // Messages rejected by Receive since Bind. May be read from any thread.
  uint64_t rejected() const { return rejected_.load(); }
  // CURVE/ZMTP handshakes that failed since Bind (as far as Receive has seen them; these are
  // read from the monitor during Receive). May be read from any thread.
  uint64_t handshake_failures() const { return handshake_failures_.load(); }

 private:
  RouterSocket(internal::ZmqSocket socket, internal::ZmqSocket monitor, RouterOptions options, std::string endpoint);
  // Handles one ready message; true with *out filled when it was valid.
  bool HandleMessage(Incoming* out);
  void Reject(const std::string& peer, const std::string& peer_key, uint64_t request_id, bool reply,
              const Status& why);
  void DrainMonitor();

  internal::ZmqSocket socket_;
  internal::ZmqSocket monitor_;  // ZMQ_PAIR connected to socket_'s monitor endpoint
  RouterOptions options_;
  std::string endpoint_;
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> handshake_failures_{0};
};

}  // namespace distri::wire
