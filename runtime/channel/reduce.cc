#include "runtime/channel/reduce.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace distri::channel {

uint16_t FloatToHalf(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN (keep NaN quiet and non-zero)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0u));
  }
  if (abs >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65536: inf
  if (abs < 0x38800000u) {
    // Below the smallest normal half (2^-14): a subnormal in units of 2^-24. Scaling by 2^24
    // is exact and nearbyint rounds to nearest even in the default rounding mode.
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(scaled)));
  }
  uint32_t h = ((((abs >> 23) - 127u + 15u) << 10) | ((abs & 0x7fffffu) >> 13));
  const uint32_t rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into inf: correct
  return static_cast<uint16_t>(sign | h);
}

float HalfToFloat(uint16_t bits) {
  const uint32_t sign = (static_cast<uint32_t>(bits) & 0x8000u) << 16;
  const uint32_t exp = (bits >> 10) & 0x1fu;
  const uint32_t mant = bits & 0x3ffu;
  if (exp == 0) {
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp - 15u + 127u) << 23) | (mant << 13));
}

uint16_t FloatToBFloat16(float value) {
  uint32_t x = std::bit_cast<uint32_t>(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

float BFloat16ToFloat(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

namespace {

constexpr size_t kBlock = 2048;

// Acc: accumulator type; Load/Store convert between the element type T and Acc.
template <typename T, typename Acc, typename Load, typename Store>
void SumBlocks(std::span<const void* const> inputs, std::span<void* const> outputs, size_t count,
               Load load, Store store) {
  Acc acc[kBlock];
  for (size_t start = 0; start < count; start += kBlock) {
    const size_t n = std::min(kBlock, count - start);
    const T* in0 = static_cast<const T*>(inputs[0]) + start;
    for (size_t i = 0; i < n; ++i) acc[i] = load(in0[i]);
    for (size_t k = 1; k < inputs.size(); ++k) {
      const T* in = static_cast<const T*>(inputs[k]) + start;
      for (size_t i = 0; i < n; ++i) acc[i] = static_cast<Acc>(acc[i] + load(in[i]));
    }
    for (void* out_ptr : outputs) {
      T* out = static_cast<T*>(out_ptr) + start;
      for (size_t i = 0; i < n; ++i) out[i] = store(acc[i]);
    }
  }
}

template <typename T, typename U>
void SumWrapping(std::span<const void* const> inputs, std::span<void* const> outputs, size_t count) {
  // Unsigned arithmetic wraps without undefined behaviour; same bits as two's complement.
  SumBlocks<T, U>(inputs, outputs, count,
                  [](T v) { return static_cast<U>(v); },
                  [](U v) { return static_cast<T>(v); });
}

}  // namespace

void ReduceSum(DType dtype, std::span<const void* const> inputs, std::span<void* const> outputs,
               size_t count) {
  if (count == 0 || inputs.empty() || outputs.empty()) return;
  switch (dtype) {
    case DType::kF32:
      SumBlocks<float, float>(inputs, outputs, count, [](float v) { return v; },
                              [](float v) { return v; });
      return;
    case DType::kF16:
      SumBlocks<uint16_t, float>(inputs, outputs, count, HalfToFloat, FloatToHalf);
      return;
    case DType::kBF16:
      SumBlocks<uint16_t, float>(inputs, outputs, count, BFloat16ToFloat, FloatToBFloat16);
      return;
    case DType::kI32: SumWrapping<int32_t, uint32_t>(inputs, outputs, count); return;
    case DType::kI64: SumWrapping<int64_t, uint64_t>(inputs, outputs, count); return;
    case DType::kU8: SumWrapping<uint8_t, uint8_t>(inputs, outputs, count); return;
  }
}

}  // namespace distri::channel
