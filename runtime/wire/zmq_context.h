// RAII ownership of a ZeroMQ context, shared by the sockets and the ZAP handler made in it.
//
// A CURVE server socket consults the ZAP handler bound in *its own* context, so a server and
// its ZapAuthenticator must share one ZmqContext. Sockets keep a shared_ptr to their context,
// so the context outlives them; destroying the last reference terminates it (sockets are
// made with linger 0, so termination never waits for unsent messages).
#pragma once

#include <memory>
#include <string>

#include "runtime/common/status.h"

namespace distri::wire {

class ZmqContext {
 public:
  // A new context. Fails (Internal) only when libzmq cannot create one (out of file
  // descriptors, ...).
  static Result<std::shared_ptr<ZmqContext>> Create();
  ~ZmqContext();
  ZmqContext(const ZmqContext&) = delete;
  ZmqContext& operator=(const ZmqContext&) = delete;

  // The libzmq context (void*), for runtime/wire's own sockets.
  void* raw() const { return ctx_; }

 private:
  explicit ZmqContext(void* ctx) : ctx_(ctx) {}
  void* ctx_;
};

// OK when the linked libzmq supports CURVE; otherwise FailedPrecondition saying so and how
// to get one (libzmq built with libsodium, e.g. Debian's libzmq5).
Status CheckCurveSupport();

// "4.3.4": the version of the linked libzmq.
std::string ZmqVersionString();

}  // namespace distri::wire
