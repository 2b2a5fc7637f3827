// Small LibTorch helpers shared by the actors: device and dtype parsing with clear errors.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <string_view>

#include "runtime/common/status.h"

namespace distri {

// "cpu", "cuda", "cuda:N" (N must be an existing device). "auto" picks cuda:0 when available.
Result<c10::Device> ParseDevice(std::string_view text);
// "fp32"/"float32", "fp16"/"float16", "bf16"/"bfloat16".
Result<c10::ScalarType> ParseDtype(std::string_view text);
std::string DtypeName(c10::ScalarType t);
// Peak bytes allocated by LibTorch's caching allocator on `device` since the last reset
// (0 for CPU devices), and its reset.
int64_t PeakAllocatedBytes(const c10::Device& device);
int64_t PeakReservedBytes(const c10::Device& device);
void ResetPeakMemory(const c10::Device& device);

// torch version, CUDA availability and device names, one line each.
std::string TorchInfo();

}  // namespace distri
