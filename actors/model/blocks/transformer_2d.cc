#include "actors/model/blocks/transformer_2d.h"

#include <tuple>

#include "actors/model/blocks/fused_ops.h"

namespace distri::model {

BasicTransformerBlockImpl::BasicTransformerBlockImpl(const BasicTransformerBlockOptions& o) {
  norm1 = register_module("norm1", LayerNorm(LayerNormOptions(o.dim()).eps(o.norm_eps())));
  attn1 = register_module(
      "attn1", Attention(AttentionOptions(o.dim(), o.heads(), o.dim_head()).upcast_attention(o.upcast_attention())));
  norm2 = register_module("norm2", LayerNorm(LayerNormOptions(o.dim()).eps(o.norm_eps())));
  attn2 = register_module("attn2", Attention(AttentionOptions(o.dim(), o.heads(), o.dim_head())
                                                 .cross_attention_dim(o.cross_attention_dim())
                                                 .upcast_attention(o.upcast_attention())));
  norm3 = register_module("norm3", LayerNorm(LayerNormOptions(o.dim()).eps(o.norm_eps())));
  ff = register_module("ff", FeedForward(FeedForwardOptions(o.dim())));
}

at::Tensor BasicTransformerBlockImpl::forward(const at::Tensor& tokens, const at::Tensor& context) const {
  return ForwardChained(tokens, {}, context, nullptr).first;
}

std::pair<at::Tensor, at::Tensor> BasicTransformerBlockImpl::ForwardChained(const at::Tensor& tokens,
                                                                            const at::Tensor& normed,
                                                                            const at::Tensor& context,
                                                                            const LayerNormImpl* next_norm) const {
  if (TunedGemmEnabled()) {
    // The residual adds in the output projections' GEMM epilogues (TunedLinear: cuBLASLt with
    // beta = 1): no add kernels, and each LayerNorm reads one tensor. Where TunedLinear falls
    // back, the same add_ then layer_norm as FusedAddLayerNorm's fallback below.
    at::Tensor h = attn1->ForwardAdd(normed.defined() ? normed : norm1->forward(tokens), {}, tokens);
    at::Tensor h2 = attn2->ForwardAdd(norm2->forward(h), context, h);
    at::Tensor out = ff->ForwardAdd(norm3->forward(h2), h2);
    return {out, next_norm == nullptr ? at::Tensor() : next_norm->forward(out)};
  }
  // Each sub-layer's output is a fresh tensor (from a Linear), so the residual adds go in place.
  // h = attn1(norm1(t)) + t, then norm2(h): the add and the norm in one pass where the fused
  // kernel applies (FusedAddLayerNorm; the same arithmetic as add_ then layer_norm otherwise).
  at::Tensor h = attn1->forward(normed.defined() ? normed : norm1->forward(tokens));
  at::Tensor n = FusedAddLayerNorm(h, tokens, norm2->weight, norm2->bias, norm2->options.eps());
  at::Tensor h2 = attn2->forward(n, context);
  n = FusedAddLayerNorm(h2, h, norm3->weight, norm3->bias, norm3->options.eps());
  at::Tensor out = ff->forward(n);
  if (next_norm == nullptr) return {out.add_(h2), at::Tensor()};
  at::Tensor next = FusedAddLayerNorm(out, h2, next_norm->weight, next_norm->bias, next_norm->options.eps());
  return {out, next};
}

Transformer2DModelImpl::Transformer2DModelImpl(const Transformer2DModelOptions& o) : options(o) {
  const int64_t channels = o.in_channels(), inner = o.heads() * o.dim_head();
  norm = register_module("norm", GroupNorm(GroupNormOptions(o.norm_num_groups(), channels).eps(1e-6)));
  if (o.use_linear_projection()) {
    linear_in_ = Linear(LinearOptions(channels, inner));
    proj_in = register_module("proj_in", linear_in_.ptr());
  } else {
    conv_in_ = Conv2d(Conv2dOptions(channels, inner, 1));
    proj_in = register_module("proj_in", conv_in_.ptr());
  }
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers(); ++i) {
    blocks_.emplace_back(BasicTransformerBlockOptions(inner, o.heads(), o.dim_head(), o.cross_attention_dim())
                             .upcast_attention(o.upcast_attention()));
    transformer_blocks->push_back(blocks_.back());
  }
  if (o.use_linear_projection()) {
    linear_out_ = Linear(LinearOptions(inner, channels));
    proj_out = register_module("proj_out", linear_out_.ptr());
  } else {
    conv_out_ = Conv2d(Conv2dOptions(inner, channels, 1));
    proj_out = register_module("proj_out", conv_out_.ptr());
  }
}

at::Tensor Transformer2DModelImpl::forward(const at::Tensor& x, const at::Tensor& context) const {
  const int64_t batch = x.size(0), height = x.size(2), width = x.size(3);
  const int64_t inner = options.heads() * options.dim_head();
  at::Tensor h = norm->forward(x);
  at::Tensor tokens;
  if (linear_in_) {
    tokens = linear_in_->forward(h.permute({0, 2, 3, 1}).reshape({batch, height * width, options.in_channels()}));
  } else {
    tokens = conv_in_->forward(h).permute({0, 2, 3, 1}).reshape({batch, height * width, inner});
  }
  // Block i's last residual add and block i+1's norm1 run as one pass (ForwardChained).
  at::Tensor normed;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const LayerNormImpl* next = i + 1 < blocks_.size() ? blocks_[i + 1]->norm1.get() : nullptr;
    std::tie(tokens, normed) = blocks_[i]->ForwardChained(tokens, normed, context, next);
  }
  if (linear_out_ && TunedGemmEnabled() && x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    // channels_last x is already in token order: the residual add goes in proj_out's GEMM
    // epilogue, and the result keeps x's memory format, as `x + h` below does.
    at::Tensor residual = x.permute({0, 2, 3, 1}).reshape({batch, height * width, options.in_channels()});
    return linear_out_->ForwardAdd(tokens, residual)
        .view({batch, height, width, options.in_channels()})
        .permute({0, 3, 1, 2});
  }
  if (linear_out_) {
    h = linear_out_->forward(tokens).view({batch, height, width, options.in_channels()}).permute({0, 3, 1, 2});
  } else {
    h = conv_out_->forward(tokens.view({batch, height, width, inner}).permute({0, 3, 1, 2}));
  }
  // x first: the sum takes the input's memory format.
  return x + h;
}

}  // namespace distri::model
