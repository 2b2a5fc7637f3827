// The client side of the control plane: a ZeroMQ DEALER socket connected to one server
// (the head), used by node agents, actors, the C++ client and the CLI.
//
//   auto client = DealerSocket::Connect(ctx, {.endpoint = "tcp://head:7070", .sender_id = "client:cli",
//                                            .curve = my_keys, .server_public_key = head_pub}).value();
//   DISTRI_ASSIGN_OR_RETURN(wire::JobStatus st,
//       client->Call<wire::JobStatus>(wire::GetJob{id}, std::chrono::seconds(5)));
//
// Sends wait for an authenticated connection (ZMQ_IMMEDIATE): when the server is down or
// refuses our key, Send fails with Unavailable after its timeout instead of queueing
// forever. Replies are untrusted too: Receive decodes the envelope with the same checks as
// the server. Not thread-safe: use one DealerSocket from one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "runtime/common/logging.h"
#include "runtime/common/status.h"
#include "runtime/wire/curve_keys.h"
#include "runtime/wire/messages.h"
#include "runtime/wire/zmq_context.h"
#include "runtime/wire/zmq_socket.h"

namespace distri::wire {

struct DealerOptions {
  std::string endpoint;             // "tcp://10.0.0.1:7070"
  std::string sender_id = "client"; // envelope sender id ("node:<hex>", "client:cli")
  std::optional<CurveKeyPair> curve;  // our key pair (must be in the server's allow-list)
  std::string server_public_key;    // Z85; required with curve
  bool allow_insecure = false;      // no CURVE: only for in-process tests
};

class DealerSocket {
 public:
  // Starts connecting (in the background; the handshake completes on first use).
  // Errors: InvalidArgument (options, bad keys or endpoint), FailedPrecondition (no CURVE).
  static Result<std::unique_ptr<DealerSocket>> Connect(std::shared_ptr<ZmqContext> context, DealerOptions options);

  const std::string& endpoint() const { return options_.endpoint; }
  // The protocol minor version the server announced in the last envelope received from it
  // (any type, a reply to an older request or an Error included); nullopt before the first.
  // How a requester learns what the server knows (runtime/wire/field_versions.h).
  std::optional<uint8_t> server_minor() const { return server_minor_; }

  // Sends raw bytes as one frame (tests use this to send malformed data). Unavailable when no
  // authenticated connection exists within `timeout`.
  Status SendBytes(std::string_view bytes, std::chrono::milliseconds timeout);
  Status SendEnvelope(const Envelope& envelope, std::chrono::milliseconds timeout);
  // Sends `message` with a fresh request id and returns that id.
  template <typename M>
  Result<uint64_t> Send(const M& message, std::chrono::milliseconds timeout) {
    const uint64_t id = next_request_id_++;
    DISTRI_ASSIGN_OR_RETURN(Envelope e, MakeEnvelope(message, id, options_.sender_id));
    DISTRI_RETURN_IF_ERROR(SendEnvelope(e, timeout));
    return id;
  }

  // The next envelope from the server (DeadlineExceeded when none within `timeout`; the
  // envelope's own errors, as DecodeEnvelope names them, when it is malformed).
  Result<Envelope> Receive(std::chrono::milliseconds timeout);
  // Receive that also returns early, with no envelope, once `wake_fd` is readable (another
  // thread's signal, e.g. a WakeupFd; the caller drains it). A ready message comes first.
  Result<std::optional<Envelope>> ReceiveOrWoken(std::chrono::milliseconds timeout, int wake_fd);

  // Request/reply: sends `request`, waits for the envelope answering it (replies to older
  // requests are skipped), and opens it as Resp (an Error reply becomes its Status).
  // `timeout` covers the send and the wait.
  template <typename Resp, typename Req>
  Result<Resp> Call(const Req& request, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    DISTRI_ASSIGN_OR_RETURN(uint64_t id, Send(request, timeout));
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      DISTRI_ASSIGN_OR_RETURN(Envelope reply, Receive(std::max(left, std::chrono::milliseconds(0))));
      if (reply.request_id == id) return Open<Resp>(reply);
      DISTRI_LOG(DEBUG) << options_.endpoint << ": skipping a stale " << MessageTypeName(reply.type)
                        << " (request id " << reply.request_id << ", waiting for " << id << ")";
    }
  }

 private:
  DealerSocket(internal::ZmqSocket socket, DealerOptions options)
      : socket_(std::move(socket)), options_(std::move(options)) {}

  internal::ZmqSocket socket_;
  DealerOptions options_;
  uint64_t next_request_id_ = 1;
  std::optional<uint8_t> server_minor_;
};

}  // namespace distri::wire
