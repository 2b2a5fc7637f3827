// WakeupFd: a file descriptor other threads make readable to wake a thread that sleeps in
// poll()/zmq_poll() on it together with its sockets (a Linux eventfd). The sleeping thread
// wakes at once instead of noticing the work at its next timeout.
//
//   DISTRI_ASSIGN_OR_RETURN(std::unique_ptr<WakeupFd> wake, WakeupFd::Create());
//   // any thread:    queue work under a mutex, then wake->Notify();
//   // poller thread: poll on wake->fd() and the sockets; wake->Drain(), then take the work.
//
// Notifications do not queue: any number of Notify() calls before a Drain() make fd()
// readable once. Draining before taking the work loses none (a Notify after the Drain leaves
// fd() readable for the next poll). Notify and Drain are thread-safe and never block.
#pragma once

#include <memory>

#include "runtime/common/status.h"

namespace distri {

class WakeupFd {
 public:
  // Internal when the kernel gives no eventfd (out of file descriptors).
  static Result<std::unique_ptr<WakeupFd>> Create();
  ~WakeupFd();
  WakeupFd(const WakeupFd&) = delete;
  WakeupFd& operator=(const WakeupFd&) = delete;

  // Makes fd() readable until the next Drain().
  void Notify();
  // Makes fd() unreadable (until the next Notify()); true when it was readable.
  bool Drain();
  // Readable (POLLIN) while notified. Owned by this object: valid for its lifetime.
  int fd() const { return fd_; }

 private:
  explicit WakeupFd(int fd) : fd_(fd) {}
  const int fd_;
};

}  // namespace distri
