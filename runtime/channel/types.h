// Buffers as the data plane sees them: a pointer, an element count, a dtype and a device.
// No LibTorch: actors/ converts tensors to these views (contiguous memory only).
//
// Enum values are stable (they may cross process boundaries and the C ABI): never reuse or
// renumber one; add new values at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/common/status.h"

namespace distri::channel {

enum class DType : int32_t {
  kF32 = 0,
  kF16 = 1,   // IEEE 754 binary16
  kBF16 = 2,  // bfloat16
  kI32 = 3,
  kI64 = 4,
  kU8 = 5,
};
inline constexpr int kNumDTypes = 6;

// Size of one element in bytes; 0 for a value outside the enum.
size_t DTypeSize(DType dtype);
// "f32", "f16", "bf16", "i32", "i64", "u8"; "dtype(<n>)" for a value outside the enum.
std::string DTypeName(DType dtype);
bool IsValidDType(DType dtype);
// Parses the names above (case-sensitive).
Result<DType> ParseDType(std::string_view name);

enum class DeviceKind : int32_t { kCpu = 0, kCuda = 1 };

// Where a buffer lives. For kCuda, `index` is the CUDA device ordinal; for kCpu it is 0.
struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;

  static constexpr Device Cpu() { return {DeviceKind::kCpu, 0}; }
  static constexpr Device Cuda(int index) { return {DeviceKind::kCuda, index}; }
  bool is_cpu() const { return kind == DeviceKind::kCpu; }
  bool is_cuda() const { return kind == DeviceKind::kCuda; }
  bool operator==(const Device&) const = default;
  // "cpu", "cuda:1"
  std::string ToString() const;
};

// Reduction of AllReduce. Only kSum today; values are stable.
enum class ReduceOp : int32_t { kSum = 0 };
std::string ReduceOpName(ReduceOp op);

// A writable view of `count` contiguous elements of `dtype` at `data` on `device`. Does not
// own the memory. count == 0 is allowed (data may then be null).
struct Buffer {
  void* data = nullptr;
  size_t count = 0;
  DType dtype = DType::kF32;
  Device device = Device::Cpu();

  size_t bytes() const { return count * DTypeSize(dtype); }
};

// A read-only view; a Buffer converts to it implicitly.
struct ConstBuffer {
  const void* data = nullptr;
  size_t count = 0;
  DType dtype = DType::kF32;
  Device device = Device::Cpu();

  ConstBuffer() = default;
  ConstBuffer(const void* d, size_t n, DType t, Device dev = Device::Cpu())
      : data(d), count(n), dtype(t), device(dev) {}
  ConstBuffer(const Buffer& b)  // NOLINT: implicit by design
      : data(b.data), count(b.count), dtype(b.dtype), device(b.device) {}

  size_t bytes() const { return count * DTypeSize(dtype); }
};

// Typed helpers: CpuBuffer(vec.data(), vec.size()).
template <typename T>
constexpr DType DTypeOf();
template <> constexpr DType DTypeOf<float>() { return DType::kF32; }
template <> constexpr DType DTypeOf<int32_t>() { return DType::kI32; }
template <> constexpr DType DTypeOf<int64_t>() { return DType::kI64; }
template <> constexpr DType DTypeOf<uint8_t>() { return DType::kU8; }

template <typename T>
Buffer CpuBuffer(T* data, size_t count) {
  return Buffer{data, count, DTypeOf<T>(), Device::Cpu()};
}
template <typename T>
ConstBuffer CpuBuffer(const T* data, size_t count) {
  return ConstBuffer(data, count, DTypeOf<T>(), Device::Cpu());
}

}  // namespace distri::channel
