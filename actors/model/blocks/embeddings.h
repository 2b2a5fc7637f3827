// Timestep embeddings (diffusers embeddings.py: Timesteps, TimestepEmbedding).
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "actors/model/blocks/layers.h"

namespace distri::model {

// Sinusoidal embedding of (possibly fractional) timesteps, as in DDPM / diffusers'
// get_timestep_embedding: frequencies exp(-ln(max_period) * i / (half - downscale_freq_shift)),
// i = 0..half-1; [sin | cos], or [cos | sin] with flip_sin_to_cos; odd sizes are zero-padded.
struct TimestepsOptions {
  explicit TimestepsOptions(int64_t num_channels) : num_channels_(num_channels) {}
  TORCH_ARG(int64_t, num_channels);
  TORCH_ARG(bool, flip_sin_to_cos) = true;
  TORCH_ARG(double, downscale_freq_shift) = 0.0;
  TORCH_ARG(double, scale) = 1.0;
  TORCH_ARG(double, max_period) = 10000.0;
};

class TimestepsImpl : public torch::nn::Module {
 public:
  explicit TimestepsImpl(const TimestepsOptions& options) : options(options) {}
  // timesteps: [N], any numeric dtype, any device. Returns [N, num_channels], fp32, same device
  // (the caller casts to the model dtype, as diffusers does).
  at::Tensor forward(const at::Tensor& timesteps) const;

  TimestepsOptions options;
};
TORCH_MODULE(Timesteps);

// linear_1 -> SiLU -> linear_2 (no cond_proj, no post activation).
struct TimestepEmbeddingOptions {
  TimestepEmbeddingOptions(int64_t in_channels, int64_t time_embed_dim)
      : in_channels_(in_channels), time_embed_dim_(time_embed_dim) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, time_embed_dim);
};

class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  explicit TimestepEmbeddingImpl(const TimestepEmbeddingOptions& options);
  at::Tensor forward(const at::Tensor& sample) const;

  Linear linear_1{nullptr};
  Linear linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace distri::model
