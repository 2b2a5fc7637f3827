// Host reduction kernels used by the host backends (local, UCX) for AllReduce.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "runtime/channel/types.h"

namespace distri::channel {

// outputs[k][i] = inputs[0][i] + inputs[1][i] + ... for i < count, for every output k, with the
// Channel's AllReduce contract: sums in input order; f16/bf16 accumulated in f32 and rounded
// once (round to nearest even); integers wrap. Works block by block through a small scratch
// array, so an output may alias an input exactly (in place) but must not overlap partially.
void ReduceSum(DType dtype, std::span<const void* const> inputs, std::span<void* const> outputs,
               size_t count);

// IEEE binary16 and bfloat16 conversions (round to nearest even; NaN stays NaN).
uint16_t FloatToHalf(float value);
float HalfToFloat(uint16_t bits);
uint16_t FloatToBFloat16(float value);
float BFloat16ToFloat(uint16_t bits);

}  // namespace distri::channel
