#include "runtime/wire/dealer_socket.h"

#include <zmq.h>

namespace distri::wire {

Result<std::unique_ptr<DealerSocket>> DealerSocket::Connect(std::shared_ptr<ZmqContext> context, DealerOptions options) {
  if (options.endpoint.empty()) return Status::InvalidArgument("DealerSocket: empty endpoint");
  if (options.sender_id.size() > kMaxSenderIdBytes) {
    return Status::InvalidArgument("DealerSocket: sender id longer than " + std::to_string(kMaxSenderIdBytes) + " bytes");
  }
  if (!options.curve && !options.allow_insecure) {
    return Status::InvalidArgument("DealerSocket " + options.endpoint +
                                   ": no CURVE key pair given (set allow_insecure only for in-process tests)");
  }
  DISTRI_ASSIGN_OR_RETURN(internal::ZmqSocket socket, internal::ZmqSocket::Create(std::move(context), ZMQ_DEALER));
  DISTRI_RETURN_IF_ERROR(socket.SetInt(ZMQ_IMMEDIATE, 1, "ZMQ_IMMEDIATE"));
  DISTRI_RETURN_IF_ERROR(socket.SetInt64(ZMQ_MAXMSGSIZE, static_cast<int64_t>(kMaxEnvelopeBytes), "ZMQ_MAXMSGSIZE"));
  // A refused client reconnects; back off so it does not hammer the server.
  DISTRI_RETURN_IF_ERROR(socket.SetInt(ZMQ_RECONNECT_IVL, 100, "ZMQ_RECONNECT_IVL"));
  DISTRI_RETURN_IF_ERROR(socket.SetInt(ZMQ_RECONNECT_IVL_MAX, 5000, "ZMQ_RECONNECT_IVL_MAX"));
  if (options.curve) {
    DISTRI_RETURN_IF_ERROR(CheckCurveSupport());
    DISTRI_RETURN_IF_ERROR(ValidateZ85Key(options.curve->public_key, "client public key"));
    DISTRI_RETURN_IF_ERROR(ValidateZ85Key(options.curve->secret_key, "client secret key"));
    DISTRI_RETURN_IF_ERROR(ValidateZ85Key(options.server_public_key, "server public key"));
    DISTRI_RETURN_IF_ERROR(socket.SetBytes(ZMQ_CURVE_SERVERKEY, options.server_public_key, "ZMQ_CURVE_SERVERKEY"));
    DISTRI_RETURN_IF_ERROR(socket.SetBytes(ZMQ_CURVE_PUBLICKEY, options.curve->public_key, "ZMQ_CURVE_PUBLICKEY"));
    DISTRI_RETURN_IF_ERROR(socket.SetBytes(ZMQ_CURVE_SECRETKEY, options.curve->secret_key, "ZMQ_CURVE_SECRETKEY"));
  }
  DISTRI_RETURN_IF_ERROR(socket.Connect(options.endpoint));
  return std::unique_ptr<DealerSocket>(new DealerSocket(std::move(socket), std::move(options)));
}

Status DealerSocket::SendBytes(std::string_view bytes, std::chrono::milliseconds timeout) {
  DISTRI_RETURN_IF_ERROR(socket_.SetInt(ZMQ_SNDTIMEO, static_cast<int>(timeout.count()), "ZMQ_SNDTIMEO"));
  const Status s = socket_.SendFrames({bytes});
  if (s.code() == StatusCode::kDeadlineExceeded) {
    return Status::Unavailable("no authenticated connection to " + options_.endpoint + " within " +
                               std::to_string(timeout.count()) +
                               " ms (server down, or it refused our CURVE key / we use the wrong server key)");
  }
  return s.WithContext(options_.endpoint);
}

Status DealerSocket::SendEnvelope(const Envelope& envelope, std::chrono::milliseconds timeout) {
  DISTRI_ASSIGN_OR_RETURN(std::string bytes, EncodeEnvelope(envelope));
  return SendBytes(bytes, timeout);
}

Result<Envelope> DealerSocket::Receive(std::chrono::milliseconds timeout) {
  DISTRI_ASSIGN_OR_RETURN(std::optional<Envelope> e, ReceiveOrWoken(timeout, -1));
  if (!e) return Status::Internal(options_.endpoint + ": woken without a wake fd");
  return std::move(*e);
}

Result<std::optional<Envelope>> DealerSocket::ReceiveOrWoken(std::chrono::milliseconds timeout, int wake_fd) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    const Result<internal::ZmqSocket::Ready> ready =
        socket_.WaitReadableOrWoken(std::max(left, std::chrono::milliseconds(0)), wake_fd);
    if (!ready.ok()) return ready.status().WithContext(options_.endpoint);
    if (*ready == internal::ZmqSocket::Ready::kWoken) return std::optional<Envelope>();
    std::vector<std::string> frames;
    const Status s = socket_.ReceiveFrames(1, &frames);
    if (frames.empty()) continue;  // woken without a message
    DISTRI_RETURN_IF_ERROR(s.WithContext(options_.endpoint + ": reply"));
    DISTRI_ASSIGN_OR_RETURN(Envelope envelope, DecodeEnvelope(frames[0]));
    server_minor_ = envelope.version_minor;
    return std::optional<Envelope>(std::move(envelope));
  }
}

}  // namespace distri::wire
