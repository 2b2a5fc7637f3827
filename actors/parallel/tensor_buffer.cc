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

void* CurrentStream(const at::Tensor& tensor) {
#ifdef DISTRI_HAVE_CUDA
  if (tensor.is_cuda()) return c10::cuda::getCurrentCUDAStream(tensor.get_device()).stream();
#endif
  return nullptr;
}

}  // namespace distri::parallel
