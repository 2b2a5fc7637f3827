// ResnetBlock2D (diffusers resnet.py), the "default" time-embedding form:
//   h = conv1(silu(norm1(x))) [+ time_emb_proj(silu(temb))[:, :, None, None]]
//   h = conv2(silu(norm2(h)))            (dropout is inactive at inference)
//   out = (shortcut(x) + h) / output_scale_factor
// shortcut is conv_shortcut (1x1, or 3x3 with use_conv_shortcut) when in != out, else identity.
// temb_channels 0 means no time embedding (the VAE's blocks).
// With a TensorParallelHook attached (tensor_parallel_hook.h), forward goes through it.
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "actors/model/blocks/layers.h"
#include "actors/model/blocks/tensor_parallel_hook.h"

namespace distri::model {

struct ResnetBlock2DOptions {
  ResnetBlock2DOptions(int64_t in_channels, int64_t out_channels)
      : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, temb_channels) = 0;  // 0: no time embedding projection
  TORCH_ARG(int64_t, groups) = 32;
  TORCH_ARG(double, eps) = 1e-6;
  TORCH_ARG(double, output_scale_factor) = 1.0;
  TORCH_ARG(bool, use_conv_shortcut) = false;  // 3x3 instead of 1x1 shortcut when in != out
};

class ResnetBlock2DImpl : public torch::nn::Module, public TensorParallelBlock {
 public:
  explicit ResnetBlock2DImpl(const ResnetBlock2DOptions& options);
  // x: [B, in, H, W]; temb: [B, temb_channels], or undefined when temb_channels is 0.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb = {}) const;

  ResnetBlock2DOptions options;
  GroupNorm norm1{nullptr};
  Conv2d conv1{nullptr};
  Linear time_emb_proj{nullptr};
  GroupNorm norm2{nullptr};
  Conv2d conv2{nullptr};
  Conv2d conv_shortcut{nullptr};
};
TORCH_MODULE(ResnetBlock2D);

}  // namespace distri::model
