// Attention (diffusers attention_processor.py: Attention + AttnProcessor2_0), two forms:
//  - tokens [B, N, query_dim]: self-attention (no context) or cross-attention (context
//    [B, M, cross_attention_dim]); the UNet's attn1/attn2.
//  - spatial [B, C, H, W] with a group norm (the VAE's mid-block attention): group_norm, attend
//    over the H*W tokens, optional residual connection, divide by rescale_output_factor.
// State-dict names: to_q, to_k, to_v, to_out.0, group_norm.
//
// Softmax precision: upcast_attention / upcast_softmax ask diffusers' classic processor to
// compute scores/softmax in fp32. diffusers' default processor (SDPA) ignores them, and so do
// we: at::scaled_dot_product_attention's fused kernels (flash, memory-efficient, the CPU flash
// kernel) accumulate and normalise in fp32 for fp16/bf16 inputs. The flags are kept so the
// options mirror the config.
//
// Self-attention K/V go through the LayerContext (layer_context.h) when one is attached; the
// token form goes through a TensorParallelHook (tensor_parallel_hook.h) when one is attached.
#pragma once

#include <mutex>

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "actors/model/blocks/layer_context.h"
#include "actors/model/blocks/layers.h"
#include "actors/model/blocks/tensor_parallel_hook.h"

namespace distri::model {

struct AttentionOptions {
  AttentionOptions(int64_t query_dim, int64_t heads, int64_t dim_head)
      : query_dim_(query_dim), heads_(heads), dim_head_(dim_head) {}
  TORCH_ARG(int64_t, query_dim);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(int64_t, dim_head);
  TORCH_ARG(int64_t, cross_attention_dim) = 0;  // 0: self-attention
  TORCH_ARG(bool, bias) = false;                // bias of to_q/to_k/to_v (to_out.0 always has one)
  TORCH_ARG(bool, upcast_attention) = false;    // see the header comment
  TORCH_ARG(bool, upcast_softmax) = false;
  // Spatial form (VAE): group norm before attending (0: none), residual, rescale.
  TORCH_ARG(int64_t, norm_num_groups) = 0;
  TORCH_ARG(double, eps) = 1e-5;
  TORCH_ARG(bool, residual_connection) = false;
  TORCH_ARG(double, rescale_output_factor) = 1.0;
};

class AttentionImpl : public torch::nn::Module, public HookedLayer, public TensorParallelBlock {
 public:
  explicit AttentionImpl(const AttentionOptions& options);

  // x: [B, N, query_dim] tokens, or [B, query_dim, H, W] for the spatial form.
  // context: [B, M, cross_attention_dim] for cross-attention; undefined for self-attention.
  // Returns the same shape as x.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context = {}) const;
  // forward(x, context) + residual (the output's shape). In the token form without a tensor-
  // parallel hook the add runs in to_out's GEMM epilogue where TunedLinear applies (one kernel
  // fewer); otherwise it is forward(...).add_(residual).
  at::Tensor ForwardAdd(const at::Tensor& x, const at::Tensor& context, const at::Tensor& residual) const;

  bool is_cross_attention() const { return options.cross_attention_dim() > 0; }
  LayerKind kind() const override { return LayerKind::kSelfAttention; }
  bool wants_context() const override { return !is_cross_attention(); }
  // After `context`, the cached context tensor, was overwritten in place (a CUDA graph's
  // static text buffer, reused by the next job): recomputes the cached keys/values into the
  // same storage, so that graphs which captured that storage see the new ones. Returns false
  // (and changes nothing) when the cache holds another context; true otherwise (also for
  // self-attention, which has no cache).
  bool RecomputeCrossKeyValue(const at::Tensor& context) const;
  // Self-attention only (no-op otherwise): moves to_q/to_k/to_v's weights (and biases) into one
  // [3 inner, dim] tensor and makes the three parameters views of it, so that the projections
  // run as one GEMM while the state dict keeps diffusers' names and loading into the views
  // still works. Call after the weights are loaded; a later .to()/set_data on the parameters
  // simply falls back to three GEMMs (Attend checks the views still alias the fused tensor).
  void FuseProjections();

  AttentionOptions options;
  GroupNorm group_norm{nullptr};
  Linear to_q{nullptr};
  Linear to_k{nullptr};
  Linear to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};
  Linear to_out_0{nullptr};  // == to_out[0]

 private:
  // Attention over [B, N, C] tokens; `residual` (undefined or the output's shape) is added by
  // the output projection.
  at::Tensor Attend(const at::Tensor& tokens, const at::Tensor& context, const at::Tensor& residual = {}) const;
  // Cross-attention keys/values of `context`, cached across calls with the same context tensor
  // (the text embeddings are constant for all the steps of a job; DistriFusion caches them
  // too). The cache holds a reference to the context, so a new tensor never aliases an old
  // one; callers must not modify a context in place while it is in use, except through
  // RecomputeCrossKeyValue.
  std::pair<at::Tensor, at::Tensor> CrossKeyValue(const at::Tensor& context) const;

  // The fused [3 inner, dim] projection (FuseProjections), or undefined.
  at::Tensor qkv_weight_, qkv_bias_;
  bool QkvFused() const;

  mutable std::mutex kv_mutex_;
  mutable at::Tensor kv_context_, k_cache_, v_cache_;
  at::Tensor ForwardSpatial(const at::Tensor& x) const;
};
TORCH_MODULE(Attention);

// RecomputeCrossKeyValue(context) on every attention module under `root`; false when any
// cross-attention cache held another context (then graphs that captured the caches are stale).
bool RecomputeCrossKeyValues(torch::nn::Module& root, const at::Tensor& context);

// FuseProjections() on every attention module under `root` (LoadUNet and LoadVae call it).
void FuseAttentionProjections(torch::nn::Module& root);

}  // namespace distri::model
