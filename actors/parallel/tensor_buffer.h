// Views of LibTorch tensors as channel buffers (runtime/channel has no LibTorch).
#pragma once

#include <ATen/ATen.h>

#include "runtime/channel/types.h"
#include "runtime/common/status.h"

namespace distri::parallel {

// The channel dtype of a tensor dtype: f32, f16, bf16, i32, i64, u8; InvalidArgument otherwise.
Result<channel::DType> ChannelDType(at::ScalarType type);

// A view of all of `tensor`'s elements. The tensor must be contiguous (InvalidArgument
// otherwise) and stay alive and unmoved while the channel uses the view.
Result<channel::Buffer> TensorBuffer(const at::Tensor& tensor);

// The stream argument of channel operations on `tensor`: LibTorch's current CUDA stream of its
// device (a cudaStream_t) for CUDA tensors, nullptr otherwise.
void* CurrentStream(const at::Tensor& tensor);

}  // namespace distri::parallel
