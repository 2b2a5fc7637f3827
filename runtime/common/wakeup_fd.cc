#include "runtime/common/wakeup_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace distri {

Result<std::unique_ptr<WakeupFd>> WakeupFd::Create() {
  // Non-blocking: Notify never waits (the counter saturating at 2^64-2 would take longer than
  // any process lives) and Drain of an unnotified fd returns at once.
  const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return Status::Internal(std::string("eventfd: ") + std::strerror(errno));
  return std::unique_ptr<WakeupFd>(new WakeupFd(fd));
}

WakeupFd::~WakeupFd() { close(fd_); }

void WakeupFd::Notify() {
  const uint64_t one = 1;
  ssize_t n;
  do {
    n = write(fd_, &one, sizeof(one));
  } while (n < 0 && errno == EINTR);
  // EAGAIN (a saturated counter) still leaves the fd readable: nothing is lost.
}

bool WakeupFd::Drain() {
  // One read resets the eventfd's counter to zero, however many Notify calls came.
  uint64_t count = 0;
  ssize_t n;
  do {
    n = read(fd_, &count, sizeof(count));
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof(count));
}

}  // namespace distri
