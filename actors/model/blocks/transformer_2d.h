// Transformer2DModel with continuous input and BasicTransformerBlock (diffusers
// transformers/transformer_2d.py, attention.py), the form used by SD 1.x/2.x and SDXL:
//
//   Transformer2DModel(x [B, C, H, W], context [B, M, D]):
//     h = norm(x)                                    GroupNorm, eps 1e-6
//     tokens = proj_in(h) as [B, H*W, inner]         1x1 conv, or Linear (use_linear_projection)
//     tokens = transformer_blocks.N(tokens, context) for N in 0..num_layers-1
//     return x + proj_out(tokens) as [B, C, H, W]
//
//   BasicTransformerBlock(t, context):
//     t = t + attn1(norm1(t))             self-attention
//     t = t + attn2(norm2(t), context)    cross-attention
//     t = t + ff(norm3(t))                FeedForward / GEGLU
//
// Tokens are the pixels in row-major order; for a channels_last x the permutes are views.
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "actors/model/blocks/attention.h"
#include "actors/model/blocks/feed_forward.h"
#include "actors/model/blocks/layers.h"

namespace distri::model {

struct BasicTransformerBlockOptions {
  BasicTransformerBlockOptions(int64_t dim, int64_t heads, int64_t dim_head, int64_t cross_attention_dim)
      : dim_(dim), heads_(heads), dim_head_(dim_head), cross_attention_dim_(cross_attention_dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(int64_t, dim_head);
  TORCH_ARG(int64_t, cross_attention_dim);
  TORCH_ARG(bool, upcast_attention) = false;
  TORCH_ARG(double, norm_eps) = 1e-5;
};

class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  explicit BasicTransformerBlockImpl(const BasicTransformerBlockOptions& options);
  // tokens: [B, N, dim]; context: [B, M, cross_attention_dim].
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& context) const;
  // forward() for a chain of blocks: `normed` is norm1(tokens) when the previous block already
  // computed it (undefined: computed here); with `next_norm`, also returns next_norm(output),
  // the residual add and that norm taken in one pass (FusedAddLayerNorm), else undefined.
  std::pair<at::Tensor, at::Tensor> ForwardChained(const at::Tensor& tokens, const at::Tensor& normed,
                                                   const at::Tensor& context, const LayerNormImpl* next_norm) const;

  LayerNorm norm1{nullptr};
  Attention attn1{nullptr};
  LayerNorm norm2{nullptr};
  Attention attn2{nullptr};
  LayerNorm norm3{nullptr};
  FeedForward ff{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

struct Transformer2DModelOptions {
  Transformer2DModelOptions(int64_t heads, int64_t dim_head, int64_t in_channels, int64_t cross_attention_dim)
      : heads_(heads), dim_head_(dim_head), in_channels_(in_channels), cross_attention_dim_(cross_attention_dim) {}
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(int64_t, dim_head);
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, cross_attention_dim);
  TORCH_ARG(int64_t, num_layers) = 1;
  TORCH_ARG(int64_t, norm_num_groups) = 32;
  TORCH_ARG(bool, use_linear_projection) = false;
  TORCH_ARG(bool, upcast_attention) = false;
};

class Transformer2DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer2DModelImpl(const Transformer2DModelOptions& options);
  // x: [B, in_channels, H, W]; context: [B, M, cross_attention_dim]. Returns [B, in_channels, H, W].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context) const;

  Transformer2DModelOptions options;
  GroupNorm norm{nullptr};
  std::shared_ptr<torch::nn::Module> proj_in;   // Conv2d (1x1) or Linear
  torch::nn::ModuleList transformer_blocks{nullptr};
  std::shared_ptr<torch::nn::Module> proj_out;  // Conv2d (1x1) or Linear

 private:
  std::vector<BasicTransformerBlock> blocks_;
  Conv2d conv_in_{nullptr}, conv_out_{nullptr};
  Linear linear_in_{nullptr}, linear_out_{nullptr};
};
TORCH_MODULE(Transformer2DModel);

}  // namespace distri::model
