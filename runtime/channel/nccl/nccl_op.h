// NcclOpState: one operation of the NCCL backend, completed by a CUDA event on the channel's
// communication stream. There is no progress thread: Wait and Handle::Done poll the event
// (and NCCL's asynchronous error), Handle::StreamWait inserts an event dependency.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <mutex>

#include "runtime/channel/handle.h"

namespace distri::channel::nccl {

class NcclComm;

class NcclOpState final : public OpState {
 public:
  NcclOpState(std::string what, std::shared_ptr<NcclComm> comm);
  ~NcclOpState() override;  // gives the completion event back to the comm's pool

  // Called by NcclComm (under its lock) once the operation is on the communication stream:
  // `done` is recorded after it. `capture_origin` is the caller's stream when the operation
  // was captured into a CUDA graph (then it is complete as far as the host is concerned and
  // only StreamWait is meaningful), else nullptr.
  void SetLaunched(cudaEvent_t done, cudaStream_t capture_origin);
  // Called by NcclComm when the channel fails, before the communicator is aborted: completes
  // the operation with OK when its event has fired, else with `failure`.
  void Settle(const Status& failure);

  // Host wait: polls the completion event, the channel's sticky failure and NCCL's
  // asynchronous error until one of them ends the operation or `timeout` passes. Launches
  // deferred Sends/Recvs first (see NcclComm::Flush). Captured operations: FailedPrecondition
  // (there is nothing to wait for on the host; the fork is joined back into the capturing
  // stream so that the capture stays valid).
  Status Wait(std::chrono::milliseconds timeout) override;
  // cudaStreamWaitEvent(stream, done); no host blocking (after launching deferred
  // Sends/Recvs). Returns the operation's error when it already failed.
  Status StreamWait(void* stream) override;
  void Progress() override;

 private:
  // One non-blocking completion check; true once the operation is complete.
  bool Poll();
  bool launched() const;

  const std::shared_ptr<NcclComm> comm_;
  mutable std::mutex mu_;
  bool launched_ = false;
  cudaEvent_t done_event_ = nullptr;
  cudaStream_t capture_origin_ = nullptr;
  bool captured_ = false;
  bool joined_ = false;
};

}  // namespace distri::channel::nccl
