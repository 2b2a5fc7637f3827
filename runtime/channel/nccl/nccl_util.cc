#include "runtime/channel/nccl/nccl_util.h"

namespace distri::channel::nccl {

Status CudaError(const std::string& call, cudaError_t err) {
  return Status::Internal("CUDA " + call + ": " + cudaGetErrorString(err));
}

Status NcclError(const std::string& call, ncclResult_t result, ncclComm_t comm) {
  std::string message = "NCCL " + call + ": " + ncclGetErrorString(result);
  const char* last = comm != nullptr ? ncclGetLastError(comm) : nullptr;
  if (last != nullptr && last[0] != '\0') message += " (" + std::string(last) + ")";
  switch (result) {
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return Status::InvalidArgument(message);
    default:
      return Status::Unavailable(message);
  }
}

ncclDataType_t NcclDType(DType dtype) {
  switch (dtype) {
    case DType::kF32: return ncclFloat32;
    case DType::kF16: return ncclFloat16;
    case DType::kBF16: return ncclBfloat16;
    case DType::kI32: return ncclInt32;
    case DType::kI64: return ncclInt64;
    case DType::kU8: return ncclUint8;
  }
  return ncclUint8;  // unreachable: dtypes are validated before any backend sees them
}

DeviceScope::DeviceScope(int device) {
  if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
  if (previous_ != device) err_ = cudaSetDevice(device);
}

DeviceScope::~DeviceScope() {
  if (previous_ >= 0 && err_ == cudaSuccess) cudaSetDevice(previous_);
}

Status DeviceScope::status() const {
  return err_ == cudaSuccess ? Status::Ok() : CudaError("cudaSetDevice", err_);
}

Result<bool> IsCapturing(cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  const cudaError_t err = cudaStreamIsCapturing(stream, &capture);
  if (err != cudaSuccess) return CudaError("cudaStreamIsCapturing", err);
  if (capture == cudaStreamCaptureStatusInvalidated) {
    return Status::FailedPrecondition(
        "the stream's CUDA graph capture was invalidated by an earlier error");
  }
  return capture == cudaStreamCaptureStatusActive;
}

EventPool::~EventPool() {
  DeviceScope scope(device_);
  for (cudaEvent_t e : free_) cudaEventDestroy(e);
}

Result<cudaEvent_t> EventPool::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      cudaEvent_t e = free_.back();
      free_.pop_back();
      return e;
    }
  }
  DeviceScope scope(device_);
  DISTRI_RETURN_IF_ERROR(scope.status());
  cudaEvent_t e = nullptr;
  const cudaError_t err = cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
  if (err != cudaSuccess) return CudaError("cudaEventCreateWithFlags", err);
  return e;
}

void EventPool::Release(cudaEvent_t event) {
  if (event == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(event);
}

}  // namespace distri::channel::nccl
