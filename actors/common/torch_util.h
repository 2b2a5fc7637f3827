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
// torch version, CUDA availability and device names, one line each.
std::string TorchInfo();

}  // namespace distri
