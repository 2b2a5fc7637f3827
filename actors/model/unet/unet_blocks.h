// The UNet's down, mid and up blocks (diffusers unets/unet_2d_blocks.py). One class per role;
// `cross_attention` selects the attention variant:
//   UNetDownBlock  = DownBlock2D (no attention) | CrossAttnDownBlock2D
//   UNetMidBlock   = UNetMidBlock2DCrossAttn
//   UNetUpBlock    = UpBlock2D (no attention)   | CrossAttnUpBlock2D
// State-dict names: resnets.N, attentions.N, downsamplers.0.conv, upsamplers.0.conv.
//
// Skip connections travel on one stack (std::vector<at::Tensor>): conv_in's output and every
// down block output is pushed; each up block pops one per resnet, last in first out, exactly
// as diffusers slices down_block_res_samples.
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "actors/model/blocks/resnet.h"
#include "actors/model/blocks/sampling.h"
#include "actors/model/blocks/transformer_2d.h"

namespace distri::model {

struct UNetBlockOptions {
  UNetBlockOptions(int64_t in_channels, int64_t out_channels, int64_t temb_channels)
      : in_channels_(in_channels), out_channels_(out_channels), temb_channels_(temb_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, temb_channels);
  TORCH_ARG(int64_t, prev_output_channel) = 0;  // up blocks: channels coming from below
  TORCH_ARG(int64_t, num_layers) = 1;           // resnets (up blocks: layers_per_block + 1)
  TORCH_ARG(bool, cross_attention) = false;
  TORCH_ARG(int64_t, transformer_layers) = 1;
  TORCH_ARG(int64_t, num_heads) = 1;
  TORCH_ARG(int64_t, cross_attention_dim) = 0;
  TORCH_ARG(int64_t, groups) = 32;
  TORCH_ARG(double, eps) = 1e-5;
  TORCH_ARG(bool, use_linear_projection) = false;
  TORCH_ARG(bool, upcast_attention) = false;
  TORCH_ARG(bool, add_sampler) = true;  // downsampler / upsampler at the end
  TORCH_ARG(int64_t, downsample_padding) = 1;
  TORCH_ARG(double, output_scale_factor) = 1.0;  // resnets (the mid block's mid_block_scale_factor)
};

// Shared by the three: resnets and, with cross_attention, one Transformer2DModel per resnet.
class UNetBlockBase : public torch::nn::Module {
 public:
  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList attentions{nullptr};  // null without cross-attention

 protected:
  void AddResnet(const UNetBlockOptions& o, int64_t in_channels, int64_t out_channels);
  void AddAttention(const UNetBlockOptions& o, int64_t channels);
  void RegisterLists(bool with_attentions);

  std::vector<ResnetBlock2D> resnet_list_;
  std::vector<Transformer2DModel> attention_list_;
};

class UNetDownBlockImpl : public UNetBlockBase {
 public:
  explicit UNetDownBlockImpl(const UNetBlockOptions& options);
  // Pushes one skip per resnet (after its attention) and one after the downsampler.
  at::Tensor forward(at::Tensor h, const at::Tensor& temb, const at::Tensor& context,
                     std::vector<at::Tensor>& skips) const;

  UNetBlockOptions options;
  torch::nn::ModuleList downsamplers{nullptr};
  Downsample2D downsampler{nullptr};
};
TORCH_MODULE(UNetDownBlock);

class UNetMidBlockImpl : public UNetBlockBase {
 public:
  explicit UNetMidBlockImpl(const UNetBlockOptions& options);
  at::Tensor forward(at::Tensor h, const at::Tensor& temb, const at::Tensor& context) const;
};
TORCH_MODULE(UNetMidBlock);

class UNetUpBlockImpl : public UNetBlockBase {
 public:
  explicit UNetUpBlockImpl(const UNetBlockOptions& options);
  // Pops num_layers skips. With match_skip_size, the upsampler produces the spatial size of the
  // skip then on top of the stack (latents whose size is not a multiple of 2^levels).
  at::Tensor forward(at::Tensor h, std::vector<at::Tensor>& skips, const at::Tensor& temb,
                     const at::Tensor& context, bool match_skip_size) const;

  UNetBlockOptions options;
  torch::nn::ModuleList upsamplers{nullptr};
  Upsample2D upsampler{nullptr};
};
TORCH_MODULE(UNetUpBlock);

}  // namespace distri::model
