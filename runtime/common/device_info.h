// What accelerators and communication libraries this process can use, without LibTorch.
// Used by the node agent to report resources and by `distri info`.
#pragma once

#include <string>

namespace distri {

struct DeviceInfo {
  bool built_with_cuda = false;
  bool built_with_nccl = false;
  int cuda_device_count = 0;       // 0 when not built with CUDA or no driver/device
  std::string cuda_error;          // why the count is 0, when the runtime said so
  int cuda_runtime_version = 0;    // e.g. 13000
  int nccl_version = 0;            // e.g. 22803
  std::string ToString() const;    // one line for logs and `distri info`
};

DeviceInfo QueryDeviceInfo();

}  // namespace distri
