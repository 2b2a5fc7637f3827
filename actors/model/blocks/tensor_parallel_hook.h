// The seam for tensor parallelism (Megatron-style; design in actors/parallel/tensor_parallel.h).
//
// Three blocks of the UNet can compute a share of their heads or channels and sum the shares
// over a gang: Attention (token form: the UNet's attn1 and attn2), FeedForward (GEGLU) and
// ResnetBlock2D. Each derives from TensorParallelBlock. Without a hook (the default) they
// compute locally, exactly as before: the only change to that path is one null-pointer test.
// The parallel code attaches a hook to the blocks it splits (not necessarily all of them);
// from then on the block's forward hands its whole computation to the hook:
//
//   Attention::forward (tokens)   -> hook->Attention(site, attn, tokens, context)
//   FeedForward::forward          -> hook->FeedForward(site, ff, x)
//   ResnetBlock2D::forward        -> hook->ResnetBlock(site, block, x, temb)
//
// This is separate from LayerContext (layer_context.h), which hooks leaf layers (conv, group
// norm, self-attention K/V) for patch parallelism: tensor parallelism needs whole blocks (the
// split runs from a block's first projection to its last), and keeping it apart leaves the
// patch contexts' site numbering untouched. The two are not meant to be attached at once.
//
// Results: the hook returns the block's full output (the same on every rank), a new tensor the
// caller owns. Threading and ownership as for LayerContext: called from the thread running the
// forward; every attached block holds a shared_ptr to the hook; attach nullptr to detach.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace distri::model {

class AttentionImpl;
class FeedForwardImpl;
class ResnetBlock2DImpl;

// Where a split block sits: its state-dict path and an index the parallel code chose.
struct TensorParallelSite {
  std::string name;  // e.g. "down_blocks.1.attentions.0.transformer_blocks.0.attn1"
  int64_t index = -1;
};

class TensorParallelHook {
 public:
  virtual ~TensorParallelHook() = default;
  // tokens [B, N, query_dim]; context [B, M, cross_attention_dim] (cross-attention) or
  // undefined (self-attention). Returns [B, N, query_dim].
  virtual at::Tensor Attention(const TensorParallelSite& site, const AttentionImpl& attn, const at::Tensor& tokens,
                               const at::Tensor& context) = 0;
  // x [..., dim]. Returns [..., dim_out].
  virtual at::Tensor FeedForward(const TensorParallelSite& site, const FeedForwardImpl& ff, const at::Tensor& x) = 0;
  // x [B, in, H, W], temb [B, temb_channels] or undefined. Returns [B, out, H, W].
  virtual at::Tensor ResnetBlock(const TensorParallelSite& site, const ResnetBlock2DImpl& block, const at::Tensor& x,
                                 const at::Tensor& temb) = 0;
};

// Mixin of the three splittable blocks. `tensor_parallel()` is null when no hook is attached.
class TensorParallelBlock {
 public:
  virtual ~TensorParallelBlock() = default;
  void AttachTensorParallel(std::shared_ptr<TensorParallelHook> hook, TensorParallelSite site) {
    tp_ = std::move(hook);
    tp_site_ = std::move(site);
  }
  TensorParallelHook* tensor_parallel() const { return tp_.get(); }
  const TensorParallelSite& tensor_parallel_site() const { return tp_site_; }

 protected:
  std::shared_ptr<TensorParallelHook> tp_;
  TensorParallelSite tp_site_;
};

}  // namespace distri::model
