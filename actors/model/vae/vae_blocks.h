// The VAE's blocks (diffusers unets/unet_2d_blocks.py), none with a time embedding:
//   DownEncoderBlock2D  resnets.N, downsamplers.0.conv (stride 2, pad right/bottom by one)
//   UpDecoderBlock2D    resnets.N, upsamplers.0.conv   (nearest x2, 3x3 conv)
//   VaeMidBlock         UNetMidBlock2D: resnets.0, attentions.0 (single-head spatial
//                       attention with group norm and residual), resnets.1
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "actors/model/blocks/attention.h"
#include "actors/model/blocks/resnet.h"
#include "actors/model/blocks/sampling.h"

namespace distri::model {

struct VaeBlockOptions {
  VaeBlockOptions(int64_t in_channels, int64_t out_channels) : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, num_layers) = 1;
  TORCH_ARG(int64_t, groups) = 32;
  TORCH_ARG(double, eps) = 1e-6;
  TORCH_ARG(bool, add_sampler) = true;
  TORCH_ARG(bool, add_attention) = true;  // mid block only
};

class DownEncoderBlock2DImpl : public torch::nn::Module {
 public:
  explicit DownEncoderBlock2DImpl(const VaeBlockOptions& options);
  at::Tensor forward(at::Tensor h) const;

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList downsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> resnet_list_;
  Downsample2D downsampler_{nullptr};
};
TORCH_MODULE(DownEncoderBlock2D);

class UpDecoderBlock2DImpl : public torch::nn::Module {
 public:
  explicit UpDecoderBlock2DImpl(const VaeBlockOptions& options);
  at::Tensor forward(at::Tensor h) const;

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList upsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> resnet_list_;
  Upsample2D upsampler_{nullptr};
};
TORCH_MODULE(UpDecoderBlock2D);

// in_channels == out_channels for the mid block.
class VaeMidBlockImpl : public torch::nn::Module {
 public:
  explicit VaeMidBlockImpl(const VaeBlockOptions& options);
  at::Tensor forward(at::Tensor h) const;

  torch::nn::ModuleList attentions{nullptr};
  torch::nn::ModuleList resnets{nullptr};

 private:
  std::vector<ResnetBlock2D> resnet_list_;
  Attention attention_{nullptr};  // null without mid-block attention
};
TORCH_MODULE(VaeMidBlock);

}  // namespace distri::model
