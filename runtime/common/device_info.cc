#include "runtime/common/device_info.h"

#include <sstream>

#ifdef DISTRI_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif
#ifdef DISTRI_HAVE_NCCL
#include <nccl.h>
#endif

namespace distri {

DeviceInfo QueryDeviceInfo() {
  DeviceInfo info;
#ifdef DISTRI_HAVE_CUDA
  info.built_with_cuda = true;
  cudaRuntimeGetVersion(&info.cuda_runtime_version);
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err == cudaSuccess) {
    info.cuda_device_count = n;
  } else {
    info.cuda_error = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error state for later callers
  }
#endif
#ifdef DISTRI_HAVE_NCCL
  info.built_with_nccl = true;
  ncclGetVersion(&info.nccl_version);
#endif
  return info;
}

std::string DeviceInfo::ToString() const {
  std::ostringstream s;
  s << "cuda=" << (built_with_cuda ? "built" : "not built");
  if (built_with_cuda) {
    s << " (runtime " << cuda_runtime_version << ", " << cuda_device_count << " device(s)";
    if (!cuda_error.empty()) s << ": " << cuda_error;
    s << ")";
  }
  s << " nccl=" << (built_with_nccl ? std::to_string(nccl_version) : "not built");
  return s.str();
}

}  // namespace distri
