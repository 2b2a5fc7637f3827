// The seam for patch parallelism (DistriFusion, docs/DISTRIFUSION.md).
//
// The layers that need pixels outside a patch are exactly three, and every one of them in the
// UNet and the VAE is an instance of one of three leaf modules:
//   Conv2d     (layers.h)    every convolution; kernel > 1 needs halo rows from the neighbours
//   GroupNorm  (layers.h)    every group norm; needs statistics over the whole image
//   Attention  (attention.h) self-attention only; needs keys/values of every token
// Each of them derives from HookedLayer. By default (no context attached) they compute locally,
// exactly as diffusers does. AttachLayerContext(model, ctx) walks the module tree once and
// hands every hooked layer the context plus a LayerSite (its state-dict path, its kind and a
// per-kind index in registration order, which is the same on every rank). From then on the
// layer calls the context instead of computing itself:
//
//   Conv2d::forward(x)          -> ctx->Conv2d(site, conv, x)
//   Conv2d::ForwardAdd(x, e)    -> ctx->Conv2dAdd(site, conv, x, e)   (conv(x) + e)
//   GroupNorm::forward(x)       -> ctx->GroupNorm(site, norm, x)
//   GroupNorm::ForwardSilu(x)   -> ctx->GroupNormSilu(site, norm, x)
//   Attention (self, K/V)       -> ctx->SelfAttentionKeyValue(site, k, v), and after the
//                                  attention ctx->SelfAttentionDone(site)
//
// Conv2d sees every convolution: 3x3 (padding 1), 1x1 (proj_in/proj_out of conv-projection
// transformers, conv_shortcut, quant convs: no halo needed) and the stride-2 downsamplers
// (UNet: padding 1; VAE encoder: padding 0 after Downsample2D zero-pads the bottom row and
// right column itself). conv_in is the first site (index 0) of the UNet.
//
// A patch-parallel context (actors/parallel/) overrides these to exchange halos, statistics
// and K/V (fresh own + stale others), keyed by site.index for its per-layer buffers; the step
// phase (warm-up / synchronous / asynchronous) is the context's own state, set by the pipeline
// between steps. The base class methods are the local computation, so an override can fall
// back to them (e.g. 1x1 convolutions, conv_in which sees the full latent).
//
// Results: every method returns a new tensor that the caller owns and may modify in place
// (the blocks add residuals in place); never a view of a buffer the context keeps - except
// SelfAttentionKeyValue's keys and values, which the attention only reads, and only until it
// calls SelfAttentionDone.
// Threading: a context is called from the thread that runs the model's forward. Attaching is
// not thread-safe against a running forward. Ownership: every hooked layer holds a shared_ptr
// to the context; attach nullptr to detach.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace distri::model {

class Conv2dImpl;
class GroupNormImpl;

enum class LayerKind { kConv2d = 0, kGroupNorm = 1, kSelfAttention = 2 };

// Where a hooked layer sits in the model.
struct LayerSite {
  std::string name;             // state-dict path, e.g. "down_blocks.0.resnets.1.conv1"
  LayerKind kind = LayerKind::kConv2d;
  int64_t index = -1;           // 0, 1, ... per kind, in module registration order
};

class LayerContext {
 public:
  virtual ~LayerContext() = default;

  // Returns conv(x). Default: the local convolution with the layer's own padding.
  virtual at::Tensor Conv2d(const LayerSite& site, const Conv2dImpl& conv, const at::Tensor& x);
  // Returns conv(x) + extra, where extra is [B, C_out, 1, 1] (a ResNet block's time
  // embedding) or of conv(x)'s shape and layout (its residual). Default: Conv2d(site, conv,
  // x).add_(extra); contexts override it to add the bias and extra in one pass.
  virtual at::Tensor Conv2dAdd(const LayerSite& site, const Conv2dImpl& conv, const at::Tensor& x,
                               const at::Tensor& extra);
  // Returns group_norm(x) for x [B, C, ...]. Default: statistics of x alone.
  virtual at::Tensor GroupNorm(const LayerSite& site, const GroupNormImpl& norm, const at::Tensor& x);
  // silu(group_norm(x)) (resnets normalise then activate). Default: GroupNorm, then SiLU in
  // place; contexts override it to fuse the two.
  virtual at::Tensor GroupNormSilu(const LayerSite& site, const GroupNormImpl& norm, const at::Tensor& x);
  // k, v: [B, tokens, inner] projected from this rank's own tokens (fresh). Returns the keys
  // and values the queries attend to, [B, tokens', inner] each, same dtype/device.
  // Default: {k, v} unchanged.
  virtual std::pair<at::Tensor, at::Tensor> SelfAttentionKeyValue(const LayerSite& site, at::Tensor k,
                                                                  at::Tensor v);
  // After the attention that used SelfAttentionKeyValue's result was issued (the keys and
  // values are no longer read by later work on the stream). Default: nothing. A context that
  // returned views of buffers it refreshes may refresh them from here on.
  virtual void SelfAttentionDone(const LayerSite& site);
};

// Mixin for the three hooked leaf modules. `context()` is null when none is attached.
class HookedLayer {
 public:
  virtual ~HookedLayer() = default;
  virtual LayerKind kind() const = 0;
  // False for layers of a hookable type that need no exchange (cross-attention): they get no
  // site and never call the context.
  virtual bool wants_context() const { return true; }
  void AttachContext(std::shared_ptr<LayerContext> ctx, LayerSite site) {
    ctx_ = std::move(ctx);
    site_ = std::move(site);
  }
  LayerContext* context() const { return ctx_.get(); }
  const LayerSite& site() const { return site_; }

 protected:
  std::shared_ptr<LayerContext> ctx_;
  LayerSite site_;
};

// Attaches `ctx` (or detaches, when null) to every hooked layer under `root` and returns their
// sites in registration order, so that a parallel context can size its buffers up front.
std::vector<LayerSite> AttachLayerContext(torch::nn::Module& root, std::shared_ptr<LayerContext> ctx);

}  // namespace distri::model
