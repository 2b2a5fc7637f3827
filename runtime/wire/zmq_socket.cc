#include "runtime/wire/zmq_socket.h"

#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace distri::wire::internal {
namespace {

// Receives one frame into a zmq_msg_t, retrying on EINTR.
int RecvMsg(zmq_msg_t* msg, void* socket, int flags) {
  int rc;
  do {
    rc = zmq_msg_recv(msg, socket, flags);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

}  // namespace

std::string ZmqError(int err) {
  const char* name = err == EAGAIN ? "EAGAIN"
                     : err == EHOSTUNREACH ? "EHOSTUNREACH"
                     : err == EADDRINUSE ? "EADDRINUSE"
                     : err == EINVAL ? "EINVAL"
                     : err == ETERM ? "ETERM"
                     : nullptr;
  std::string s = zmq_strerror(err);
  if (name != nullptr) s += std::string(" (") + name + ")";
  return s;
}

Result<ZmqSocket> ZmqSocket::Create(std::shared_ptr<ZmqContext> context, int type) {
  ZmqSocket s;
  s.socket_ = zmq_socket(context->raw(), type);
  if (s.socket_ == nullptr) return Status::Internal("zmq_socket: " + ZmqError(errno));
  s.context_ = std::move(context);
  DISTRI_RETURN_IF_ERROR(s.SetInt(ZMQ_LINGER, 0, "ZMQ_LINGER"));
  return s;
}

ZmqSocket::~ZmqSocket() {
  if (socket_ != nullptr) zmq_close(socket_);
}

ZmqSocket::ZmqSocket(ZmqSocket&& o) noexcept : context_(std::move(o.context_)), socket_(o.socket_) {
  o.socket_ = nullptr;
}

ZmqSocket& ZmqSocket::operator=(ZmqSocket&& o) noexcept {
  if (this != &o) {
    if (socket_ != nullptr) zmq_close(socket_);
    socket_ = o.socket_;
    o.socket_ = nullptr;
    context_ = std::move(o.context_);
  }
  return *this;
}

Status ZmqSocket::SetInt(int option, int value, std::string_view name) {
  if (zmq_setsockopt(socket_, option, &value, sizeof(value)) != 0)
    return Status::Internal("zmq_setsockopt(" + std::string(name) + "): " + ZmqError(errno));
  return Status::Ok();
}

Status ZmqSocket::SetInt64(int option, int64_t value, std::string_view name) {
  if (zmq_setsockopt(socket_, option, &value, sizeof(value)) != 0)
    return Status::Internal("zmq_setsockopt(" + std::string(name) + "): " + ZmqError(errno));
  return Status::Ok();
}

Status ZmqSocket::SetBytes(int option, std::string_view value, std::string_view name) {
  if (zmq_setsockopt(socket_, option, value.data(), value.size()) != 0)
    return Status::Internal("zmq_setsockopt(" + std::string(name) + "): " + ZmqError(errno));
  return Status::Ok();
}

Status ZmqSocket::Bind(const std::string& endpoint) {
  if (zmq_bind(socket_, endpoint.c_str()) != 0)
    return Status::Unavailable("cannot bind " + endpoint + ": " + ZmqError(errno));
  return Status::Ok();
}

Status ZmqSocket::Connect(const std::string& endpoint) {
  if (zmq_connect(socket_, endpoint.c_str()) != 0)
    return Status::InvalidArgument("cannot connect to " + endpoint + ": " + ZmqError(errno));
  return Status::Ok();
}

Result<std::string> ZmqSocket::LastEndpoint() const {
  char buf[1024];
  size_t len = sizeof(buf);
  if (zmq_getsockopt(socket_, ZMQ_LAST_ENDPOINT, buf, &len) != 0)
    return Status::Internal("zmq_getsockopt(ZMQ_LAST_ENDPOINT): " + ZmqError(errno));
  return std::string(buf, strnlen(buf, len));
}

Status ZmqSocket::WaitReadable(std::chrono::milliseconds timeout) {
  return WaitReadableOrWoken(timeout, -1).status();
}

Result<ZmqSocket::Ready> ZmqSocket::WaitReadableOrWoken(std::chrono::milliseconds timeout, int wake_fd) {
  // zmq_poll takes plain file descriptors next to zmq sockets (socket == nullptr).
  zmq_pollitem_t items[2] = {{socket_, 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
  const int count = wake_fd >= 0 ? 2 : 1;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // Rounded up: a wait truncated to 0 ms would spin through the last millisecond.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    const int rc = zmq_poll(items, count, std::max<long>(0, left.count()));
    if (rc > 0) {
      if ((items[0].revents & ZMQ_POLLIN) != 0) return Ready::kMessage;
      // Anything on the wake fd (readable, or an error a poll would keep reporting) wakes.
      if (count == 2 && items[1].revents != 0) return Ready::kWoken;
    }
    if (rc < 0 && errno != EINTR) return Status::Internal("zmq_poll: " + ZmqError(errno));
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::DeadlineExceeded("no message within " + std::to_string(timeout.count()) + " ms");
    }
  }
}

Status ZmqSocket::ReceiveFrames(size_t max_frames, std::vector<std::string>* frames, std::string* user_id) {
  frames->clear();
  if (user_id != nullptr) user_id->clear();
  size_t total = 0;
  while (true) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (RecvMsg(&msg, socket_, ZMQ_DONTWAIT) < 0) {
      const int err = errno;
      zmq_msg_close(&msg);
      // EAGAIN before the first frame: nothing was ready. Mid-message cannot happen (zmq
      // delivers multipart messages atomically).
      return Status::Unavailable("zmq_msg_recv: " + ZmqError(err));
    }
    ++total;
    if (frames->size() < max_frames) {
      frames->emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
    }
    if (user_id != nullptr && user_id->empty()) {
      const char* uid = zmq_msg_gets(&msg, "User-Id");
      if (uid != nullptr) *user_id = uid;
    }
    const bool more = zmq_msg_more(&msg) != 0;
    zmq_msg_close(&msg);
    if (!more) break;
  }
  if (total > max_frames) {
    return Status::InvalidArgument("message of " + std::to_string(total) + " frames, expected at most " +
                                   std::to_string(max_frames));
  }
  return Status::Ok();
}

Status ZmqSocket::SendFrames(const std::vector<std::string_view>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const int flags = i + 1 < frames.size() ? ZMQ_SNDMORE : 0;
    int rc;
    do {
      rc = zmq_send(socket_, frames[i].data(), frames[i].size(), flags);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      const int err = errno;
      if (err == EAGAIN) return Status::DeadlineExceeded("send timed out: " + ZmqError(err));
      if (err == EHOSTUNREACH) return Status::Unavailable("peer is not connected: " + ZmqError(err));
      return Status::Internal("zmq_send: " + ZmqError(err));
    }
  }
  return Status::Ok();
}

}  // namespace distri::wire::internal
