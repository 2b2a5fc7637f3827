#include "runtime/channel/types.h"

namespace distri::channel {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kU8: return 1;
  }
  return 0;
}

bool IsValidDType(DType dtype) { return DTypeSize(dtype) != 0; }

std::string DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kU8: return "u8";
  }
  return "dtype(" + std::to_string(static_cast<int32_t>(dtype)) + ")";
}

Result<DType> ParseDType(std::string_view name) {
  for (int i = 0; i < kNumDTypes; ++i) {
    const auto dtype = static_cast<DType>(i);
    if (DTypeName(dtype) == name) return dtype;
  }
  return Status::InvalidArgument("unknown dtype '" + std::string(name) +
                                 "' (expected f32, f16, bf16, i32, i64 or u8)");
}

std::string Device::ToString() const {
  switch (kind) {
    case DeviceKind::kCpu: return "cpu";
    case DeviceKind::kCuda: return "cuda:" + std::to_string(index);
  }
  return "device(" + std::to_string(static_cast<int32_t>(kind)) + ")";
}

std::string ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
  }
  return "reduce_op(" + std::to_string(static_cast<int32_t>(op)) + ")";
}

}  // namespace distri::channel
