// Leaf layers of the diffusion models: Linear, Conv2d, GroupNorm, LayerNorm.
//
// Why not torch::nn::Linear etc.: those initialise their weights on construction (Kaiming
// uniform on the CPU), which for the 2.6 B parameters of SDXL costs seconds and is always
// thrown away, since every weight is loaded from a file. These allocate their parameters
// uninitialised (at::empty on the CPU, fp32, untouched pages) and never require grad; the
// loaders (module_loading.h) re-allocate them on the target device/dtype and fill them.
// Parameter names are PyTorch's ("weight", "bias"), so state-dict paths match diffusers.
//
// Conv2d and GroupNorm are HookedLayers (layer_context.h): with a LayerContext attached, their
// forward goes through it (patch parallelism); Compute() is always the local computation.
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "actors/model/blocks/layer_context.h"

namespace distri::model {

// ---- Linear: y = x W^T + b over the last dimension.
struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
};

class LinearImpl : public torch::nn::Module {
 public:
  explicit LinearImpl(const LinearOptions& options);
  // at::linear(x, weight, bias), through TunedLinear (fused_ops.h: cuBLASLt with a measured
  // algorithm when DISTRI_TUNED_GEMM=1, else exactly at::linear).
  at::Tensor forward(const at::Tensor& x) const;
  // forward(x) + residual (y's shape), the add in the GEMM's epilogue where TunedLinear applies.
  at::Tensor ForwardAdd(const at::Tensor& x, const at::Tensor& residual) const;

  LinearOptions options;
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined
};
TORCH_MODULE(Linear);

// ---- Conv2d with square kernel, symmetric zero padding, no groups/dilation (all diffusers
// UNet/VAE convolutions are of this form).
struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size),
        padding_((kernel_size - 1) / 2) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, padding);  // default: "same" for odd kernels, (k - 1) / 2
  TORCH_ARG(bool, bias) = true;
};

class Conv2dImpl : public torch::nn::Module, public HookedLayer {
 public:
  explicit Conv2dImpl(const Conv2dOptions& options);
  at::Tensor forward(const at::Tensor& x) const;
  // The local convolution, ignoring any context.
  at::Tensor Compute(const at::Tensor& x) const;
  // The local convolution with padding (pad_h, pad_w) instead of the layer's own (a patch's strip
  // that already holds its halo rows: (0, 1)), plus `extra` where defined ([N, C, 1, 1] or the
  // output's shape). On the GPU, while FusedConvBiasEnabled(), the bias and `extra` are added in
  // one vectorized pass (FusedConvAdd); otherwise at::conv2d, then the add.
  at::Tensor ComputeAdd(const at::Tensor& x, int64_t pad_h, int64_t pad_w, const at::Tensor& extra) const;
  // forward(x) + extra ([N, C, 1, 1] or x's output shape), the bias add fused with the add.
  at::Tensor ForwardAdd(const at::Tensor& x, const at::Tensor& extra) const;
  LayerKind kind() const override { return LayerKind::kConv2d; }

  Conv2dOptions options;
  at::Tensor weight;  // [out, in, k, k]
  at::Tensor bias;    // [out] or undefined
};
TORCH_MODULE(Conv2d);

// ---- GroupNorm over [B, C, *] (biased variance, like torch.nn.GroupNorm), always affine.
struct GroupNormOptions {
  GroupNormOptions(int64_t num_groups, int64_t num_channels) : num_groups_(num_groups), num_channels_(num_channels) {}
  TORCH_ARG(int64_t, num_groups);
  TORCH_ARG(int64_t, num_channels);
  TORCH_ARG(double, eps) = 1e-5;
};

class GroupNormImpl : public torch::nn::Module, public HookedLayer {
 public:
  explicit GroupNormImpl(const GroupNormOptions& options);
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor Compute(const at::Tensor& x) const;
  // silu(forward(x)), fused into one pass where the fused kernels apply.
  at::Tensor ForwardSilu(const at::Tensor& x) const;
  LayerKind kind() const override { return LayerKind::kGroupNorm; }

  GroupNormOptions options;
  at::Tensor weight;  // [C]
  at::Tensor bias;    // [C]
};
TORCH_MODULE(GroupNorm);

// ---- LayerNorm over the last dimension, affine.
struct LayerNormOptions {
  explicit LayerNormOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(double, eps) = 1e-5;
};

class LayerNormImpl : public torch::nn::Module {
 public:
  explicit LayerNormImpl(const LayerNormOptions& options);
  at::Tensor forward(const at::Tensor& x) const;

  LayerNormOptions options;
  at::Tensor weight;
  at::Tensor bias;
};
TORCH_MODULE(LayerNorm);

// SiLU in place on a tensor the caller owns (a fresh intermediate), returned for chaining.
inline at::Tensor SiluInPlace(at::Tensor t) {
  at::silu_(t);
  return t;
}

// Registers an uninitialised CPU fp32 parameter that does not require grad.
at::Tensor RegisterEmptyParameter(torch::nn::Module& module, const std::string& name, at::IntArrayRef shape);

}  // namespace distri::model
