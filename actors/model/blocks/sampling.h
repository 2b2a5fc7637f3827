// Downsample2D and Upsample2D (diffusers downsampling.py / upsampling.py), the conv forms used
// by the UNet and the VAE. State-dict names: "<...>.downsamplers.0.conv", "<...>.upsamplers.0.conv".
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>

#include "actors/model/blocks/layers.h"

namespace distri::model {

// 3x3 convolution with stride 2. padding 1 (UNet): output ceil(H/2) x ceil(W/2).
// padding 0 (VAE encoder): zero-pad one row/column at the bottom/right first, as diffusers does.
struct Downsample2DOptions {
  explicit Downsample2DOptions(int64_t channels) : channels_(channels), out_channels_(channels) {}
  TORCH_ARG(int64_t, channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, padding) = 1;
};

class Downsample2DImpl : public torch::nn::Module {
 public:
  explicit Downsample2DImpl(const Downsample2DOptions& options);
  at::Tensor forward(const at::Tensor& x) const;

  Downsample2DOptions options;
  Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample2D);

// Nearest-neighbour x2 upsampling followed by a 3x3 convolution. With `output_size` the
// interpolation produces exactly that [H, W] (used when the latent is not a multiple of the
// UNet's total downsampling factor, to match the skip connection).
struct Upsample2DOptions {
  explicit Upsample2DOptions(int64_t channels) : channels_(channels), out_channels_(channels) {}
  TORCH_ARG(int64_t, channels);
  TORCH_ARG(int64_t, out_channels);
};

class Upsample2DImpl : public torch::nn::Module {
 public:
  explicit Upsample2DImpl(const Upsample2DOptions& options);
  at::Tensor forward(const at::Tensor& x, std::optional<at::IntArrayRef> output_size = std::nullopt) const;

  Upsample2DOptions options;
  Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

}  // namespace distri::model
