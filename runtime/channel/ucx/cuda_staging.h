// Staging of CUDA buffers through pinned host memory for the UCX backend (built only with
// CUDA: DISTRI_HAVE_CUDA). No CUDA types in this header.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "runtime/channel/handle.h"
#include "runtime/common/status.h"

namespace distri::channel::ucx {

// One operation's pinned buffers and copies. Thread-safe where noted.
class CudaStaging {
 public:
  // Allocates pinned buffers of send_bytes / recv_bytes and queues the copy of the device
  // buffer `send` into the pinned one on `stream` (after the work already queued there).
  // `copy_stream` is where CopyOut queues the copy back into `recv`.
  static Result<std::shared_ptr<CudaStaging>> Begin(int device, const void* send,
                                                    size_t send_bytes, void* recv,
                                                    size_t recv_bytes, void* stream,
                                                    void* copy_stream);
  ~CudaStaging();  // waits for the copies, then frees the pinned memory
  CudaStaging(const CudaStaging&) = delete;
  CudaStaging& operator=(const CudaStaging&) = delete;

  void* host_send() const { return host_send_; }
  void* host_recv() const { return host_recv_; }
  // True once the copy into the pinned send buffer has finished (or failed).
  bool InputReady();
  // OK, or the CUDA error of the input copy.
  Status InputStatus();
  // Queues the pinned result's copy into `recv` and records an event after it.
  Status CopyOut();
  // Host wait for CopyOut's copy (DeadlineExceeded after `timeout`).
  Status WaitOut(std::chrono::milliseconds timeout);
  // Makes `stream` wait for CopyOut's copy.
  Status StreamWaitOut(void* stream);

 private:
  CudaStaging() = default;
  int device_ = 0;
  void* host_send_ = nullptr;
  void* host_recv_ = nullptr;
  void* device_recv_ = nullptr;
  size_t recv_bytes_ = 0;
  void* copy_stream_ = nullptr;
  void* in_event_ = nullptr;   // cudaEvent_t
  void* out_event_ = nullptr;  // cudaEvent_t
  bool copied_out_ = false;
};

// The OpState of a staged operation: completion also waits for the copy back to the device.
class StagedOpState final : public OpState {
 public:
  StagedOpState(std::string what, std::shared_ptr<CudaStaging> staging)
      : OpState(std::move(what)), staging_(std::move(staging)) {}
  Status Wait(std::chrono::milliseconds timeout) override;
  Status StreamWait(void* stream) override;

 private:
  std::shared_ptr<CudaStaging> staging_;
};

// Channel-owned non-blocking streams for the copies back, one per device. Thread-safe.
class CopyStreams {
 public:
  ~CopyStreams();
  Result<void*> Get(int device);

 private:
  std::mutex mu_;
  std::map<int, void*> streams_;
};

}  // namespace distri::channel::ucx
