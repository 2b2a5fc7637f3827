// Small POSIX TCP helpers with deadlines for the standalone rendezvous. Every call that waits
// takes a deadline and returns DeadlineExceeded instead of blocking forever. No SIGPIPE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "runtime/channel/deadline.h"
#include "runtime/common/status.h"

namespace distri::channel {

// Owns a file descriptor (closed on destruction).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();

 private:
  int fd_ = -1;
};

// "host:port" for messages ("[::1]:80" for IPv6 literals).
std::string HostPort(const std::string& host, uint16_t port);

// Binds and listens (SO_REUSEADDR, non-blocking, close-on-exec). port 0 picks a free port;
// *bound_port receives the port actually bound.
Result<Fd> ListenTcp(const std::string& host, uint16_t port, uint16_t* bound_port);

// Connects to host:port, retrying refused/unreachable connections every 50 ms until `deadline`
// (the listener may not be up yet). Returns a blocking, close-on-exec socket with TCP_NODELAY.
Result<Fd> ConnectTcp(const std::string& host, uint16_t port, Clock::time_point deadline);

// Writes/reads exactly `size` bytes before `deadline`. A peer that closes gives Unavailable.
Status SendAll(int fd, const void* data, size_t size, Clock::time_point deadline);
Status RecvAll(int fd, void* data, size_t size, Clock::time_point deadline);

Status SetNonBlocking(int fd);

}  // namespace distri::channel
