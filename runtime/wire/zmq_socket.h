// Internal to runtime/wire: an owning libzmq socket handle and the few operations
// RouterSocket, DealerSocket and ZapAuthenticator share. Not thread-safe (no zmq socket is).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/wire/zmq_context.h"

namespace distri::wire::internal {

// "Resource temporarily unavailable (EAGAIN)"-style text for a zmq errno.
std::string ZmqError(int err);

class ZmqSocket {
 public:
  ZmqSocket() = default;
  // Creates a socket of `type` (ZMQ_ROUTER, ...) in `context`, with linger 0.
  static Result<ZmqSocket> Create(std::shared_ptr<ZmqContext> context, int type);
  ~ZmqSocket();
  ZmqSocket(ZmqSocket&& o) noexcept;
  ZmqSocket& operator=(ZmqSocket&& o) noexcept;
  ZmqSocket(const ZmqSocket&) = delete;
  ZmqSocket& operator=(const ZmqSocket&) = delete;

  void* raw() const { return socket_; }
  const std::shared_ptr<ZmqContext>& context() const { return context_; }

  Status SetInt(int option, int value, std::string_view name);
  Status SetInt64(int option, int64_t value, std::string_view name);
  Status SetBytes(int option, std::string_view value, std::string_view name);
  Status Bind(const std::string& endpoint);
  Status Connect(const std::string& endpoint);
  // ZMQ_LAST_ENDPOINT: the address actually bound (resolves "tcp://127.0.0.1:*").
  Result<std::string> LastEndpoint() const;

  // Waits up to `timeout` for a message; DeadlineExceeded when none came.
  Status WaitReadable(std::chrono::milliseconds timeout);
  // What WaitReadableOrWoken found ready.
  enum class Ready { kMessage, kWoken };
  // Waits up to `timeout` for a message or for `wake_fd` (a pollable file descriptor another
  // thread makes readable, e.g. a WakeupFd) to become readable, whichever comes first: kMessage
  // when a message is ready (also when both are), kWoken when only `wake_fd` is. The fd is not
  // read: the caller drains it. DeadlineExceeded when neither within `timeout`.
  Result<Ready> WaitReadableOrWoken(std::chrono::milliseconds timeout, int wake_fd);
  // Receives all frames of the next message (which must be ready: WaitReadable). Frames past
  // `max_frames` are received and dropped, and the message is then reported as
  // InvalidArgument. `user_id` (optional) receives the message's "User-Id" property (the
  // identity the ZAP handler returned), or "" when there is none.
  Status ReceiveFrames(size_t max_frames, std::vector<std::string>* frames, std::string* user_id = nullptr);
  // Sends `frames` as one message. Fails with DeadlineExceeded when the send timeout
  // (ZMQ_SNDTIMEO) elapses, Unavailable when a ROUTER's peer is gone.
  Status SendFrames(const std::vector<std::string_view>& frames);

 private:
  std::shared_ptr<ZmqContext> context_;
  void* socket_ = nullptr;
};

}  // namespace distri::wire::internal
