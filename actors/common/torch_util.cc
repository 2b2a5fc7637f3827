#include "actors/common/torch_util.h"

#include <ATen/Context.h>
#include <torch/version.h>

#include <charconv>
#include <sstream>

#ifdef DISTRI_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace distri {

#ifdef DISTRI_HAVE_CUDA
namespace {
c10::CachingDeviceAllocator::DeviceStats CudaStats(const c10::Device& device) {
  return c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
}
constexpr size_t kAggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
}  // namespace
#endif

int64_t PeakAllocatedBytes(const c10::Device& device) {
#ifdef DISTRI_HAVE_CUDA
  if (device.is_cuda()) return CudaStats(device).allocated_bytes[kAggregate].peak;
#endif
  return 0;
}

int64_t PeakReservedBytes(const c10::Device& device) {
#ifdef DISTRI_HAVE_CUDA
  if (device.is_cuda()) return CudaStats(device).reserved_bytes[kAggregate].peak;
#endif
  return 0;
}

void ResetPeakMemory(const c10::Device& device) {
#ifdef DISTRI_HAVE_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
}

Result<c10::Device> ParseDevice(std::string_view text) {
  const bool have_cuda = at::hasCUDA();
  if (text == "cpu") return c10::Device(c10::kCPU);
  if (text == "auto") return have_cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (text.substr(0, 4) == "cuda") {
    if (!have_cuda) {
      return Status::InvalidArgument("device '" + std::string(text) +
                                     "': this build or machine has no CUDA device");
    }
    int index = 0;
    if (text.size() > 4) {
      std::string_view rest = text.substr(4);
      if (rest[0] != ':' || rest.size() == 1) {
        return Status::InvalidArgument("device '" + std::string(text) + "': expected cuda:N");
      }
      auto [p, ec] = std::from_chars(rest.data() + 1, rest.data() + rest.size(), index);
      if (ec != std::errc() || p != rest.data() + rest.size() || index < 0) {
        return Status::InvalidArgument("device '" + std::string(text) + "': expected cuda:N");
      }
    }
    int count = static_cast<int>(at::getNumGPUs());
    if (index >= count) {
      return Status::InvalidArgument("device '" + std::string(text) + "': only " +
                                     std::to_string(count) + " CUDA device(s) visible");
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return Status::InvalidArgument("unknown device '" + std::string(text) +
                                 "' (expected cpu, cuda, cuda:N or auto)");
}

Result<c10::ScalarType> ParseDtype(std::string_view text) {
  if (text == "fp32" || text == "float32" || text == "float") return c10::kFloat;
  if (text == "fp16" || text == "float16" || text == "half") return c10::kHalf;
  if (text == "bf16" || text == "bfloat16") return c10::kBFloat16;
  return Status::InvalidArgument("unknown dtype '" + std::string(text) +
                                 "' (expected fp32, fp16 or bf16)");
}

std::string DtypeName(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return "fp32";
    case c10::kHalf: return "fp16";
    case c10::kBFloat16: return "bf16";
    default: return c10::toString(t);
  }
}

std::string TorchInfo() {
  std::ostringstream s;
  s << "libtorch " << TORCH_VERSION << ", cuda " << (at::hasCUDA() ? "available" : "not available");
  if (at::hasCUDA()) s << " (" << at::getNumGPUs() << " device(s))";
  return s.str();
}

}  // namespace distri
