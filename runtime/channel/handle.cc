#include "runtime/channel/handle.h"

#include "runtime/channel/deadline.h"

namespace distri::channel {

void OpState::Complete(Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    done_ = true;
    status_ = std::move(status);
  }
  cv_.notify_all();
}

bool OpState::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

Status OpState::WaitHost(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (timeout == std::chrono::milliseconds::max()) {
    cv_.wait(lock, [&] { return done_; });
    return status_;
  }
  const auto deadline = DeadlineAfter(timeout);
  if (!cv_.wait_until(lock, deadline, [&] { return done_; })) {
    return Status::DeadlineExceeded(what_ + " did not complete within " +
                                    std::to_string(timeout.count()) + " ms");
  }
  return status_;
}

Status OpState::Wait(std::chrono::milliseconds timeout) { return WaitHost(timeout); }

Status OpState::StreamWait(void* /*stream*/) { return Wait(std::chrono::milliseconds::max()); }

Handle Handle::Completed(Status status, std::string what) {
  auto state = std::make_shared<OpState>(std::move(what));
  state->Complete(std::move(status));
  return Handle(std::move(state));
}

bool Handle::Done() const {
  if (state_ == nullptr) return false;
  state_->Progress();
  return state_->done();
}

Status Handle::Wait(std::chrono::milliseconds timeout) {
  if (!state_) return Status::FailedPrecondition("Wait on an empty channel Handle");
  if (timeout.count() < 0) timeout = std::chrono::milliseconds(0);
  return state_->Wait(timeout);
}

Status Handle::StreamWait(void* stream) {
  if (!state_) return Status::FailedPrecondition("StreamWait on an empty channel Handle");
  return state_->StreamWait(stream);
}

const std::string& Handle::what() const {
  static const std::string kEmpty = "(empty handle)";
  return state_ ? state_->what() : kEmpty;
}

}  // namespace distri::channel
