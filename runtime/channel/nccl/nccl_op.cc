#include "runtime/channel/nccl/nccl_op.h"

#include <thread>

#include "runtime/channel/deadline.h"
#include "runtime/channel/nccl/nccl_comm.h"
#include "runtime/channel/nccl/nccl_util.h"

namespace distri::channel::nccl {

NcclOpState::NcclOpState(std::string what, std::shared_ptr<NcclComm> comm)
    : OpState(std::move(what)), comm_(std::move(comm)) {}

NcclOpState::~NcclOpState() {
  if (done_event_ != nullptr) comm_->events().Release(done_event_);
}

void NcclOpState::SetLaunched(cudaEvent_t done, cudaStream_t capture_origin) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    launched_ = true;
    done_event_ = done;
    capture_origin_ = capture_origin;
    captured_ = capture_origin != nullptr;
  }
  // A captured operation is complete as far as the host can tell: it is in the graph.
  if (capture_origin != nullptr) Complete(Status::Ok());
}

bool NcclOpState::launched() const {
  std::lock_guard<std::mutex> lock(mu_);
  return launched_;
}

void NcclOpState::Settle(const Status& failure) {
  if (done()) return;
  cudaEvent_t event;
  {
    std::lock_guard<std::mutex> lock(mu_);
    event = done_event_;
  }
  Complete(event != nullptr && cudaEventQuery(event) == cudaSuccess ? Status::Ok() : failure);
}

bool NcclOpState::Poll() {
  if (done()) return true;
  if (!launched()) {
    // A deferred Send/Recv: launch its group (errors complete it).
    (void)comm_->Flush();
    if (done()) return true;
    if (!launched()) {
      if (Status f = comm_->failure(); !f.ok()) {
        Complete(f);
        return true;
      }
      return false;
    }
  }
  cudaEvent_t event;
  {
    std::lock_guard<std::mutex> lock(mu_);
    event = done_event_;
  }
  // A failure settles every launched operation before the communicator is aborted (see
  // NcclComm::SettleInflightLocked), so an event that fires here fired on its own: success.
  // (Complete keeps the first result.)
  const cudaError_t err = cudaEventQuery(event);
  if (err == cudaSuccess) {
    Complete(Status::Ok());
    return true;
  }
  if (err != cudaErrorNotReady) {
    Status s = CudaError("cudaEventQuery (" + what() + ")", err);
    comm_->Fail(Status::Unavailable(s.message()), /*local=*/true);
    Complete(s);
    return true;
  }
  comm_->CheckAsyncError();
  if (Status f = comm_->failure(); !f.ok()) {
    Complete(f);
    return true;
  }
  return false;
}

void NcclOpState::Progress() { (void)Poll(); }

Status NcclOpState::Wait(std::chrono::milliseconds timeout) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (captured_) {
      if (!joined_) {
        // Join the fork so that ending the capture does not fail with an unjoined stream.
        if (IsCapturing(capture_origin_).value_or(false) &&
            cudaStreamWaitEvent(capture_origin_, done_event_, 0) == cudaSuccess) {
          joined_ = true;
        }
      }
      return Status::FailedPrecondition(
          what() + " was captured into a CUDA graph: its completion cannot be waited for on "
          "the host (use Handle::StreamWait on a stream of the capture, and synchronize the "
          "graph's launch)");
    }
  }
  const auto deadline = DeadlineAfter(timeout);
  int round = 0;
  while (!Poll()) {
    if (Clock::now() >= deadline) {
      return Status::DeadlineExceeded(what() + " did not complete within " +
                                      std::to_string(timeout.count()) + " ms");
    }
    if (++round < 200) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  return WaitHost(std::chrono::milliseconds(0));
}

Status NcclOpState::StreamWait(void* stream) {
  if (!launched()) (void)comm_->Flush();
  if (done()) {
    Status s = WaitHost(std::chrono::milliseconds(0));
    if (!s.ok()) return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!launched_) {
    Status f = comm_->failure();
    return f.ok() ? Status::Internal(what() + " was not launched") : f;
  }
  auto s = static_cast<cudaStream_t>(stream);
  const cudaError_t err = cudaStreamWaitEvent(s, done_event_, 0);
  if (err != cudaSuccess) return CudaError("cudaStreamWaitEvent (" + what() + ")", err);
  if (captured_ && s == capture_origin_) joined_ = true;
  return Status::Ok();
}

}  // namespace distri::channel::nccl
