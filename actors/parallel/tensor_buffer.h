// Views of LibTorch tensors as channel buffers (runtime/channel has no LibTorch).
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "runtime/channel/channel.h"
#include "runtime/channel/types.h"
#include "runtime/common/status.h"

namespace distri::parallel {

// The channel dtype of a tensor dtype: f32, f16, bf16, i32, i64, u8; InvalidArgument otherwise.
Result<channel::DType> ChannelDType(at::ScalarType type);

// A view of all of `tensor`'s elements. The tensor must be contiguous (InvalidArgument
// otherwise) and stay alive and unmoved while the channel uses the view.
Result<channel::Buffer> TensorBuffer(const at::Tensor& tensor);

// All-gather of row strips: `rows` is this rank's strip with rows in dimension 0, made
// contiguous here; rank r contributes rows_per_rank[r] rows of the same trailing shape. Returns
// [sum of rows_per_rank, trailing...] with the ranks' rows in rank order, on every rank.
// Stream-ordered on CUDA (usable inside a graph capture); the channel's errors otherwise.
Result<at::Tensor> AllGatherRows(channel::Channel& channel, const at::Tensor& rows,
                                 const std::vector<int64_t>& rows_per_rank);

// The stream argument of channel operations on `tensor`: LibTorch's current CUDA stream of its
// device (a cudaStream_t) for CUDA tensors, nullptr otherwise.
void* CurrentStream(const at::Tensor& tensor);

}  // namespace distri::parallel
