// The two halves of AutoencoderKL (diffusers autoencoders/vae.py Encoder, Decoder).
//   Encoder: conv_in -> down_blocks (DownEncoderBlock2D) -> mid_block -> conv_norm_out -> SiLU
//            -> conv_out (2 * latent_channels: mean and log-variance, "double_z")
//   Decoder: conv_in -> mid_block -> up_blocks (UpDecoderBlock2D) -> conv_norm_out -> SiLU
//            -> conv_out
// All group norms use eps 1e-6. quant_conv / post_quant_conv live in AutoencoderKL.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "actors/model/blocks/layers.h"
#include "actors/model/vae/vae_blocks.h"
#include "actors/model/vae/vae_options.h"

namespace distri::model {

class EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(const AutoencoderKLOptions& options);
  // images [B, in_channels, H, W] -> moments [B, 2 * latent_channels, H / f, W / f] (each
  // downsampling halves with floor).
  at::Tensor forward(const at::Tensor& images) const;

  Conv2d conv_in{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  VaeMidBlock mid_block{nullptr};
  GroupNorm conv_norm_out{nullptr};
  Conv2d conv_out{nullptr};

 private:
  std::vector<DownEncoderBlock2D> down_;
};
TORCH_MODULE(Encoder);

class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const AutoencoderKLOptions& options);
  // z [B, latent_channels, h, w] -> [B, out_channels, h * f, w * f].
  at::Tensor forward(const at::Tensor& z) const;

  Conv2d conv_in{nullptr};
  VaeMidBlock mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  GroupNorm conv_norm_out{nullptr};
  Conv2d conv_out{nullptr};

 private:
  std::vector<UpDecoderBlock2D> up_;
};
TORCH_MODULE(Decoder);

}  // namespace distri::model
