#include "runtime/wire/zmq_context.h"

#include <zmq.h>

#include <cerrno>

namespace distri::wire {

Result<std::shared_ptr<ZmqContext>> ZmqContext::Create() {
  void* ctx = zmq_ctx_new();
  if (ctx == nullptr) return Status::Internal(std::string("zmq_ctx_new failed: ") + zmq_strerror(errno));
  return std::shared_ptr<ZmqContext>(new ZmqContext(ctx));
}

ZmqContext::~ZmqContext() {
  // Retries on EINTR: zmq_ctx_term must complete or the context's threads leak.
  while (zmq_ctx_term(ctx_) != 0 && errno == EINTR) {
  }
}

std::string ZmqVersionString() {
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

Status CheckCurveSupport() {
  if (zmq_has("curve")) return Status::Ok();
  return Status::FailedPrecondition(
      "libzmq " + ZmqVersionString() +
      " was built without CURVE security (no libsodium); the distri control plane requires it. "
      "Install a libzmq built with libsodium (Debian/Ubuntu: libzmq5 and libzmq3-dev)");
}

}  // namespace distri::wire
