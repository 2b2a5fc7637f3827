#include "runtime/wire/router_socket.h"

#include <zmq.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "runtime/common/logging.h"

namespace distri::wire {
namespace {

constexpr int kMonitoredEvents =
    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

std::string PeerName(const std::string& routing_id, const std::string& key) {
  std::string hex;
  char buf[4];
  for (unsigned char c : routing_id) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    hex += buf;
  }
  return "peer " + hex + (key.empty() ? std::string() : " (key " + key + ")");
}

std::string ProtocolErrorText(uint32_t value) {
  switch (value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
      return "cryptographic error (the client may use a wrong server public key)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
      return "security mechanism mismatch (the client does not use CURVE)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE: return "key exchange failed";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "protocol error 0x%08x", value);
      return buf;
    }
  }
}

}  // namespace

Result<std::unique_ptr<RouterSocket>> RouterSocket::Bind(std::shared_ptr<ZmqContext> context, RouterOptions options) {
  if (options.endpoint.empty()) return Status::InvalidArgument("RouterSocket: empty endpoint");
  if (options.sender_id.size() > kMaxSenderIdBytes) {
    return Status::InvalidArgument("RouterSocket: sender id longer than " + std::to_string(kMaxSenderIdBytes) + " bytes");
  }
  if (!options.curve && !options.allow_insecure) {
    return Status::InvalidArgument("RouterSocket " + options.endpoint +
                                   ": no CURVE key pair given (set allow_insecure only for in-process tests)");
  }
  if (options.curve) {
    DISTRI_RETURN_IF_ERROR(CheckCurveSupport());
    DISTRI_RETURN_IF_ERROR(ValidateZ85Key(options.curve->public_key, "server public key"));
    DISTRI_RETURN_IF_ERROR(ValidateZ85Key(options.curve->secret_key, "server secret key"));
    // Without a ZAP handler in this context libzmq admits every client that knows our
    // public key; refuse to run that way.
    if (options.authenticator == nullptr) {
      return Status::FailedPrecondition("RouterSocket " + options.endpoint +
                                        ": a CURVE server needs a ZapAuthenticator (allow-list of client keys)");
    }
    if (options.authenticator->context() != context) {
      return Status::FailedPrecondition("RouterSocket " + options.endpoint +
                                        ": the ZapAuthenticator runs in another ZmqContext; libzmq would not consult it");
    }
  }

  DISTRI_ASSIGN_OR_RETURN(internal::ZmqSocket socket, internal::ZmqSocket::Create(context, ZMQ_ROUTER));
  DISTRI_RETURN_IF_ERROR(socket.SetInt(ZMQ_ROUTER_MANDATORY, 1, "ZMQ_ROUTER_MANDATORY"));
  DISTRI_RETURN_IF_ERROR(socket.SetInt64(ZMQ_MAXMSGSIZE, static_cast<int64_t>(kMaxEnvelopeBytes), "ZMQ_MAXMSGSIZE"));
  DISTRI_RETURN_IF_ERROR(socket.SetInt(ZMQ_SNDTIMEO, static_cast<int>(options.send_timeout.count()), "ZMQ_SNDTIMEO"));
  if (options.curve) {
    DISTRI_RETURN_IF_ERROR(socket.SetInt(ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER"));
    DISTRI_RETURN_IF_ERROR(socket.SetBytes(ZMQ_CURVE_SECRETKEY, options.curve->secret_key, "ZMQ_CURVE_SECRETKEY"));
    DISTRI_RETURN_IF_ERROR(socket.SetBytes(ZMQ_ZAP_DOMAIN, "distri", "ZMQ_ZAP_DOMAIN"));
  }

  // The monitor must be set up before bind so no early handshake failure is missed.
  static std::atomic<uint64_t> monitor_counter{0};
  const std::string monitor_endpoint = "inproc://distri-router-monitor-" + std::to_string(getpid()) + "-" +
                                       std::to_string(monitor_counter.fetch_add(1));
  if (zmq_socket_monitor(socket.raw(), monitor_endpoint.c_str(), kMonitoredEvents) != 0) {
    return Status::Internal("zmq_socket_monitor: " + internal::ZmqError(errno));
  }
  DISTRI_ASSIGN_OR_RETURN(internal::ZmqSocket monitor, internal::ZmqSocket::Create(context, ZMQ_PAIR));
  DISTRI_RETURN_IF_ERROR(monitor.Connect(monitor_endpoint));

  DISTRI_RETURN_IF_ERROR(socket.Bind(options.endpoint));
  DISTRI_ASSIGN_OR_RETURN(std::string bound, socket.LastEndpoint());
  DISTRI_LOG(INFO) << "control plane listening on " << bound
                   << (options.curve ? " (CURVE, clients by allow-list)" : " (INSECURE: no CURVE)");
  return std::unique_ptr<RouterSocket>(
      new RouterSocket(std::move(socket), std::move(monitor), std::move(options), std::move(bound)));
}

RouterSocket::RouterSocket(internal::ZmqSocket socket, internal::ZmqSocket monitor, RouterOptions options,
                           std::string endpoint)
    : socket_(std::move(socket)), monitor_(std::move(monitor)), options_(std::move(options)), endpoint_(std::move(endpoint)) {}

RouterSocket::~RouterSocket() {
  // Stop the monitor before closing the PAIR that reads it.
  if (socket_.raw() != nullptr) zmq_socket_monitor(socket_.raw(), nullptr, 0);
}

Result<RouterSocket::Incoming> RouterSocket::Receive(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    zmq_pollitem_t items[2] = {{socket_.raw(), 0, ZMQ_POLLIN, 0}, {monitor_.raw(), 0, ZMQ_POLLIN, 0}};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    const int rc = zmq_poll(items, 2, std::max<long>(0, left.count()));
    if (rc < 0 && errno != EINTR) return Status::Internal("zmq_poll: " + internal::ZmqError(errno));
    if (rc > 0 && (items[1].revents & ZMQ_POLLIN)) DrainMonitor();
    if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) {
      Incoming in;
      if (HandleMessage(&in)) return in;
      continue;  // rejected; keep waiting for a valid one
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::DeadlineExceeded("no message on " + endpoint_ + " within " + std::to_string(timeout.count()) +
                                      " ms");
    }
  }
}

bool RouterSocket::HandleMessage(Incoming* out) {
  std::vector<std::string> frames;
  std::string peer_key;
  // ROUTER prepends the routing id; a well-behaved DEALER sends exactly one frame.
  const Status received = socket_.ReceiveFrames(2, &frames, &peer_key);
  if (frames.empty()) return false;  // nothing was ready after all
  const std::string& peer = frames[0];
  if (!received.ok() || frames.size() != 2) {
    Reject(peer, peer_key, 0, /*reply=*/true,
           received.ok() ? Status::InvalidArgument("expected one frame (an envelope), found none") : received);
    return false;
  }
  Result<Envelope> envelope = DecodeEnvelope(frames[1]);
  if (!envelope.ok()) {
    Reject(peer, peer_key, 0, /*reply=*/true, envelope.status());
    return false;
  }
  Result<AnyMessage> message = DecodeMessage(*envelope);
  if (!message.ok()) {
    // Never answer an Error with an Error: two confused peers would ping-pong forever.
    Reject(peer, peer_key, envelope->request_id, envelope->type != MessageType::kError, message.status());
    return false;
  }
  out->peer = peer;
  out->peer_key = std::move(peer_key);
  out->envelope = std::move(envelope).value();
  out->envelope.payload.clear();
  out->envelope.payload.shrink_to_fit();
  out->message = std::move(message).value();
  return true;
}

void RouterSocket::Reject(const std::string& peer, const std::string& peer_key, uint64_t request_id, bool reply,
                          const Status& why) {
  ++rejected_;
  DISTRI_LOG(WARNING) << endpoint_ << ": rejected a message from " << PeerName(peer, peer_key) << ": "
                      << why.ToString();
  if (!reply) return;
  const Status sent = Send(peer, Error::FromStatus(why), request_id);
  if (!sent.ok()) {
    DISTRI_LOG(DEBUG) << endpoint_ << ": could not send the rejection to " << PeerName(peer, peer_key) << ": "
                      << sent.ToString();
  }
}

Status RouterSocket::SendEnvelope(std::string_view peer, const Envelope& envelope) {
  DISTRI_ASSIGN_OR_RETURN(std::string bytes, EncodeEnvelope(envelope));
  return socket_.SendFrames({peer, bytes}).WithContext(endpoint_ + ": sending " +
                                                       std::string(MessageTypeName(envelope.type)));
}

void RouterSocket::DrainMonitor() {
  while (true) {
    std::vector<std::string> frames;
    if (!monitor_.ReceiveFrames(2, &frames).ok() || frames.empty()) return;
    if (frames[0].size() < 6) continue;
    uint16_t event;
    uint32_t value;
    std::memcpy(&event, frames[0].data(), sizeof(event));
    std::memcpy(&value, frames[0].data() + 2, sizeof(value));
    const std::string where = frames.size() > 1 ? frames[1] : endpoint_;
    ++handshake_failures_;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      // The ZAP handler already logged who was refused and why.
      DISTRI_LOG(DEBUG) << where << ": handshake refused by the authenticator (ZAP status " << value << ")";
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
      DISTRI_LOG(WARNING) << where << ": refused a connection: handshake failed: " << ProtocolErrorText(value);
    } else {
      // The peer gave up first (it saw the mismatch before we did): the reason is on its side.
      DISTRI_LOG(WARNING) << where << ": refused a connection: handshake failed ("
                          << internal::ZmqError(static_cast<int>(value))
                          << "); the client may not use CURVE, or may use another server key";
    }
  }
}

}  // namespace distri::wire
