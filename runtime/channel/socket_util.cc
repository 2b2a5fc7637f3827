#include "runtime/channel/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

namespace distri::channel {
namespace {

std::string Errno(int err) { return std::strerror(err); }

int PollTimeoutMs(Clock::time_point deadline) {
  const auto left = TimeLeft(deadline);
  return left > std::chrono::milliseconds(1000) ? 1000 : static_cast<int>(left.count());
}

// Waits until `fd` is ready for `events` or the deadline passes.
Status WaitFd(int fd, short events, Clock::time_point deadline, const char* what) {
  while (true) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, PollTimeoutMs(deadline));
    if (n > 0) return Status::Ok();
    if (n < 0 && errno != EINTR) return Status::IoError(std::string("poll: ") + Errno(errno));
    if (Clock::now() >= deadline) {
      return Status::DeadlineExceeded(std::string("timed out ") + what);
    }
  }
}

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};

Result<std::unique_ptr<addrinfo, AddrInfoDeleter>> Resolve(const std::string& host, uint16_t port,
                                                           bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* result = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    return Status::InvalidArgument("cannot resolve host '" + host + "': " + gai_strerror(rc));
  }
  return std::unique_ptr<addrinfo, AddrInfoDeleter>(result);
}

}  // namespace

void Fd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string HostPort(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Status SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return Status::IoError("fcntl(O_NONBLOCK): " + Errno(errno));
  }
  return Status::Ok();
}

Result<Fd> ListenTcp(const std::string& host, uint16_t port, uint16_t* bound_port) {
  DISTRI_ASSIGN_OR_RETURN(auto addrs, Resolve(host, port, /*passive=*/true));
  std::string errors;
  for (addrinfo* a = addrs.get(); a != nullptr; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd.valid()) {
      errors += " socket: " + Errno(errno) + ";";
      continue;
    }
    const int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      errors += " bind: " + Errno(errno) + ";";
      continue;
    }
    if (::listen(fd.get(), 1024) != 0) {
      errors += " listen: " + Errno(errno) + ";";
      continue;
    }
    DISTRI_RETURN_IF_ERROR(SetNonBlocking(fd.get()));
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      return Status::IoError("getsockname: " + Errno(errno));
    }
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return fd;
  }
  return Status::Unavailable("cannot listen on " + HostPort(host, port) + ":" + errors);
}

Result<Fd> ConnectTcp(const std::string& host, uint16_t port, Clock::time_point deadline) {
  DISTRI_ASSIGN_OR_RETURN(auto addrs, Resolve(host, port, /*passive=*/false));
  std::string last_error = "no address";
  while (true) {
    for (addrinfo* a = addrs.get(); a != nullptr; a = a->ai_next) {
      Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
      if (!fd.valid()) {
        last_error = "socket: " + Errno(errno);
        continue;
      }
      int rc = ::connect(fd.get(), a->ai_addr, a->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS) {
        Status s = WaitFd(fd.get(), POLLOUT, deadline, "connecting");
        if (!s.ok()) {
          last_error = s.message();
          continue;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        errno = err;
      }
      if (rc != 0) {
        last_error = Errno(errno);
        continue;
      }
      const int flags = fcntl(fd.get(), F_GETFL, 0);
      fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
      const int one = 1;
      setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      return fd;
    }
    if (Clock::now() >= deadline) {
      return Status::Unavailable("cannot connect to " + HostPort(host, port) + ": " + last_error);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status SendAll(int fd, const void* data, size_t size, Clock::time_point deadline) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      DISTRI_RETURN_IF_ERROR(WaitFd(fd, POLLOUT, deadline, "sending"));
      continue;
    }
    return Status::Unavailable("send failed: " + Errno(errno));
  }
  return Status::Ok();
}

Status RecvAll(int fd, void* data, size_t size, Clock::time_point deadline) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::recv(fd, p, size, MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return Status::Unavailable("the peer closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      DISTRI_RETURN_IF_ERROR(WaitFd(fd, POLLIN, deadline, "waiting for a reply"));
      continue;
    }
    return Status::Unavailable("recv failed: " + Errno(errno));
  }
  return Status::Ok();
}

}  // namespace distri::channel
