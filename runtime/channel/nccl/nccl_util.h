// Small helpers of the NCCL backend: error conversion, dtype mapping, device scope, events.
// Internal to runtime/channel/nccl (includes the CUDA and NCCL headers).
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <mutex>
#include <string>
#include <vector>

#include "runtime/channel/types.h"
#include "runtime/common/status.h"

namespace distri::channel::nccl {

// Internal("CUDA <call>: <error string>").
Status CudaError(const std::string& call, cudaError_t err);
// "NCCL <call>: <error string> (<ncclGetLastError>)": Unavailable for errors that mean the
// gang is broken (system, remote, internal), InvalidArgument for usage errors.
Status NcclError(const std::string& call, ncclResult_t result, ncclComm_t comm);

// f32 -> ncclFloat32, f16 -> ncclFloat16, bf16 -> ncclBfloat16, i32 -> ncclInt32,
// i64 -> ncclInt64, u8 -> ncclUint8 (every DType of types.h has an NCCL counterpart).
ncclDataType_t NcclDType(DType dtype);

// Makes `device` current for the scope and restores the caller's device afterwards.
class DeviceScope {
 public:
  explicit DeviceScope(int device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  Status status() const;

 private:
  int previous_ = -1;
  cudaError_t err_ = cudaSuccess;
};

// Whether `stream` is being captured into a CUDA graph (cudaStreamIsCapturing). A capture that
// was invalidated is an error (the caller's graph is broken already).
Result<bool> IsCapturing(cudaStream_t stream);

// A free list of timing-free CUDA events of one device, so that operations do not create and
// destroy events each time. Thread-safe.
class EventPool {
 public:
  explicit EventPool(int device) : device_(device) {}
  ~EventPool();
  EventPool(const EventPool&) = delete;
  EventPool& operator=(const EventPool&) = delete;

  Result<cudaEvent_t> Acquire();
  // The event may still be pending on a stream: CUDA keeps the recorded work valid, and a
  // later record simply replaces it.
  void Release(cudaEvent_t event);

 private:
  const int device_;
  std::mutex mu_;
  std::vector<cudaEvent_t> free_;
};

}  // namespace distri::channel::nccl
