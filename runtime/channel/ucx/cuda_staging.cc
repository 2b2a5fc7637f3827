#include "runtime/channel/ucx/cuda_staging.h"

#include <cuda_runtime_api.h>

#include <thread>

#include "runtime/channel/deadline.h"

namespace distri::channel::ucx {
namespace {

Status CudaError(const char* call, cudaError_t err) {
  return Status::Internal(std::string("CUDA ") + call + ": " + cudaGetErrorString(err));
}

// Sets the current device for the scope and restores the caller's afterwards.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    status_ = cudaSetDevice(device);
  }
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  cudaError_t status() const { return status_; }

 private:
  int previous_ = -1;
  cudaError_t status_;
};

}  // namespace

Result<std::shared_ptr<CudaStaging>> CudaStaging::Begin(int device, const void* send,
                                                        size_t send_bytes, void* recv,
                                                        size_t recv_bytes, void* stream,
                                                        void* copy_stream) {
  DeviceGuard guard(device);
  if (guard.status() != cudaSuccess) return CudaError("cudaSetDevice", guard.status());
  std::shared_ptr<CudaStaging> s(new CudaStaging());
  s->device_ = device;
  s->device_recv_ = recv;
  s->recv_bytes_ = recv_bytes;
  s->copy_stream_ = copy_stream;
  cudaError_t err;
  if (send_bytes > 0 && (err = cudaMallocHost(&s->host_send_, send_bytes)) != cudaSuccess) {
    return CudaError("cudaMallocHost", err);
  }
  if (recv_bytes > 0 && (err = cudaMallocHost(&s->host_recv_, recv_bytes)) != cudaSuccess) {
    return CudaError("cudaMallocHost", err);
  }
  cudaEvent_t in_event, out_event;
  if ((err = cudaEventCreateWithFlags(&in_event, cudaEventDisableTiming)) != cudaSuccess) {
    return CudaError("cudaEventCreate", err);
  }
  s->in_event_ = in_event;
  if ((err = cudaEventCreateWithFlags(&out_event, cudaEventDisableTiming)) != cudaSuccess) {
    return CudaError("cudaEventCreate", err);
  }
  s->out_event_ = out_event;
  auto st = static_cast<cudaStream_t>(stream);
  if (send_bytes > 0 &&
      (err = cudaMemcpyAsync(s->host_send_, send, send_bytes, cudaMemcpyDeviceToHost, st)) != cudaSuccess) {
    return CudaError("cudaMemcpyAsync (device to host)", err);
  }
  if ((err = cudaEventRecord(in_event, st)) != cudaSuccess) return CudaError("cudaEventRecord", err);
  return s;
}

CudaStaging::~CudaStaging() {
  DeviceGuard guard(device_);
  if (out_event_ != nullptr) {
    if (copied_out_) cudaEventSynchronize(static_cast<cudaEvent_t>(out_event_));
    cudaEventDestroy(static_cast<cudaEvent_t>(out_event_));
  }
  if (in_event_ != nullptr) {
    cudaEventSynchronize(static_cast<cudaEvent_t>(in_event_));
    cudaEventDestroy(static_cast<cudaEvent_t>(in_event_));
  }
  if (host_send_ != nullptr) cudaFreeHost(host_send_);
  if (host_recv_ != nullptr) cudaFreeHost(host_recv_);
}

bool CudaStaging::InputReady() {
  return cudaEventQuery(static_cast<cudaEvent_t>(in_event_)) != cudaErrorNotReady;
}

Status CudaStaging::InputStatus() {
  const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(in_event_));
  return err == cudaSuccess ? Status::Ok() : CudaError("device to host copy", err);
}

Status CudaStaging::CopyOut() {
  DeviceGuard guard(device_);
  if (guard.status() != cudaSuccess) return CudaError("cudaSetDevice", guard.status());
  auto st = static_cast<cudaStream_t>(copy_stream_);
  cudaError_t err;
  if (recv_bytes_ > 0 &&
      (err = cudaMemcpyAsync(device_recv_, host_recv_, recv_bytes_, cudaMemcpyHostToDevice, st)) != cudaSuccess) {
    return CudaError("cudaMemcpyAsync (host to device)", err);
  }
  if ((err = cudaEventRecord(static_cast<cudaEvent_t>(out_event_), st)) != cudaSuccess) {
    return CudaError("cudaEventRecord", err);
  }
  copied_out_ = true;
  return Status::Ok();
}

Status CudaStaging::WaitOut(std::chrono::milliseconds timeout) {
  if (!copied_out_) return Status::Ok();
  const auto deadline = DeadlineAfter(timeout);
  while (true) {
    const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(out_event_));
    if (err == cudaSuccess) return Status::Ok();
    if (err != cudaErrorNotReady) return CudaError("host to device copy", err);
    if (Clock::now() >= deadline) {
      return Status::DeadlineExceeded("the copy back to the device did not finish in time");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

Status CudaStaging::StreamWaitOut(void* stream) {
  if (!copied_out_) return Status::Ok();
  const cudaError_t err = cudaStreamWaitEvent(static_cast<cudaStream_t>(stream),
                                              static_cast<cudaEvent_t>(out_event_), 0);
  return err == cudaSuccess ? Status::Ok() : CudaError("cudaStreamWaitEvent", err);
}

Status StagedOpState::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = DeadlineAfter(timeout);
  DISTRI_RETURN_IF_ERROR(WaitHost(timeout));
  return staging_->WaitOut(TimeLeft(deadline));
}

Status StagedOpState::StreamWait(void* stream) {
  DISTRI_RETURN_IF_ERROR(WaitHost(std::chrono::milliseconds::max()));
  return staging_->StreamWaitOut(stream);
}

CopyStreams::~CopyStreams() {
  for (auto& [device, stream] : streams_) {
    DeviceGuard guard(device);
    cudaStreamSynchronize(static_cast<cudaStream_t>(stream));
    cudaStreamDestroy(static_cast<cudaStream_t>(stream));
  }
}

Result<void*> CopyStreams::Get(int device) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(device);
  if (it != streams_.end()) return it->second;
  DeviceGuard guard(device);
  if (guard.status() != cudaSuccess) return CudaError("cudaSetDevice", guard.status());
  cudaStream_t stream;
  const cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (err != cudaSuccess) return CudaError("cudaStreamCreate", err);
  streams_[device] = stream;
  return static_cast<void*>(stream);
}

}  // namespace distri::channel::ucx
