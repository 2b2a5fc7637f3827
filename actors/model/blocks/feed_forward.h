// FeedForward with GEGLU (diffusers attention.py FeedForward, activations.py GEGLU):
//   net.0 = GEGLU: proj (dim -> 2 * inner); hidden, gate = chunk(2); hidden * gelu(gate) (exact)
//   net.1 = Dropout (identity at inference, no weights)
//   net.2 = Linear(inner -> dim_out)
// With a TensorParallelHook attached (tensor_parallel_hook.h), forward goes through it.
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "actors/model/blocks/layers.h"
#include "actors/model/blocks/tensor_parallel_hook.h"

namespace distri::model {

class GEGLUImpl : public torch::nn::Module {
 public:
  GEGLUImpl(int64_t dim_in, int64_t dim_out);
  at::Tensor forward(const at::Tensor& x) const;

  Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

struct FeedForwardOptions {
  explicit FeedForwardOptions(int64_t dim) : dim_(dim), dim_out_(dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, dim_out);
  TORCH_ARG(int64_t, mult) = 4;  // inner = dim * mult
};

class FeedForwardImpl : public torch::nn::Module, public TensorParallelBlock {
 public:
  explicit FeedForwardImpl(const FeedForwardOptions& options);
  at::Tensor forward(const at::Tensor& x) const {
    if (tp_) return tp_->FeedForward(tp_site_, *this, x);
    return out->forward(geglu->forward(x));
  }
  // forward(x) + residual (the output's shape), the add in the output GEMM's epilogue where
  // TunedLinear applies; with a tensor-parallel hook, after its all-reduce.
  at::Tensor ForwardAdd(const at::Tensor& x, const at::Tensor& residual) const {
    if (tp_) return tp_->FeedForward(tp_site_, *this, x).add_(residual);
    return out->ForwardAdd(geglu->forward(x), residual);
  }

  torch::nn::ModuleList net{nullptr};
  GEGLU geglu{nullptr};  // == net[0]
  Linear out{nullptr};   // == net[2]
};
TORCH_MODULE(FeedForward);

}  // namespace distri::model
