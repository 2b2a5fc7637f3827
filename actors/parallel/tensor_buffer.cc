#include "actors/parallel/tensor_buffer.h"

#include <c10/util/string_view.h>

#include <string>

#ifdef DISTRI_HAVE_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace distri::parallel {

Result<channel::DType> ChannelDType(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return channel::DType::kF32;
    case at::kHalf: return channel::DType::kF16;
    case at::kBFloat16: return channel::DType::kBF16;
    case at::kInt: return channel::DType::kI32;
    case at::kLong: return channel::DType::kI64;
    case at::kByte: return channel::DType::kU8;
    default:
      return Status::InvalidArgument(std::string("channel buffers take f32, f16, bf16, i32, i64 or u8 tensors, got ") +
                                     c10::toString(type));
  }
}

Result<channel::Buffer> TensorBuffer(const at::Tensor& tensor) {
  if (!tensor.is_contiguous()) return Status::InvalidArgument("channel buffers need contiguous tensors");
  DISTRI_ASSIGN_OR_RETURN(channel::DType dtype, ChannelDType(tensor.scalar_type()));
  channel::Device device = channel::Device::Cpu();
  if (tensor.is_cuda()) {
    device = channel::Device::Cuda(tensor.get_device());
  } else if (!tensor.is_cpu()) {
    return Status::InvalidArgument("channel buffers live on the CPU or a CUDA device, got " + tensor.device().str());
  }
  return channel::Buffer{tensor.data_ptr(), static_cast<size_t>(tensor.numel()), dtype, device};
}

Result<at::Tensor> AllGatherRows(channel::Channel& channel, const at::Tensor& rows,
                                 const std::vector<int64_t>& rows_per_rank) {
  if (static_cast<int>(rows_per_rank.size()) != channel.world_size()) {
    return Status::InvalidArgument("row all-gather: " + std::to_string(rows_per_rank.size()) +
                                   " row counts for a gang of " + std::to_string(channel.world_size()));
  }
  if (rows.dim() < 1 || rows.size(0) != rows_per_rank[channel.rank()]) {
    return Status::InvalidArgument("row all-gather: rank " + std::to_string(channel.rank()) + " should have " +
                                   std::to_string(rows_per_rank[channel.rank()]) + " rows, got " +
                                   std::to_string(rows.dim() ? rows.size(0) : 0));
  }
  at::Tensor send = rows.contiguous();
  int64_t per_row = 1;
  for (int64_t d = 1; d < send.dim(); ++d) per_row *= send.size(d);
  std::vector<size_t> counts;
  int64_t total = 0;
  for (int64_t n : rows_per_rank) {
    counts.push_back(static_cast<size_t>(n * per_row));
    total += n;
  }
  std::vector<int64_t> shape = send.sizes().vec();
  shape[0] = total;
  at::Tensor recv = at::empty(shape, send.options());
  DISTRI_ASSIGN_OR_RETURN(channel::Buffer send_buf, TensorBuffer(send));
  DISTRI_ASSIGN_OR_RETURN(channel::Buffer recv_buf, TensorBuffer(recv));
  void* stream = CurrentStream(send);
  DISTRI_RETURN_IF_ERROR(channel.AllGatherVAsync(send_buf, recv_buf, counts, stream).StreamWait(stream));
  return recv;
}

void* CurrentStream(const at::Tensor& tensor) {
#ifdef DISTRI_HAVE_CUDA
  if (tensor.is_cuda()) return c10::cuda::getCurrentCUDAStream(tensor.get_device()).stream();
#endif
  return nullptr;
}

}  // namespace distri::parallel
