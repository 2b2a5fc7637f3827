#include "actors/model/blocks/layers.h"

#include "actors/model/blocks/fused_ops.h"

namespace distri::model {

at::Tensor RegisterEmptyParameter(torch::nn::Module& module, const std::string& name, at::IntArrayRef shape) {
  return module.register_parameter(name, at::empty(shape, at::TensorOptions().dtype(at::kFloat)),
                                   /*requires_grad=*/false);
}

LinearImpl::LinearImpl(const LinearOptions& o) : options(o) {
  weight = RegisterEmptyParameter(*this, "weight", {o.out_features(), o.in_features()});
  if (o.bias()) bias = RegisterEmptyParameter(*this, "bias", {o.out_features()});
}

at::Tensor LinearImpl::forward(const at::Tensor& x) const { return TunedLinear(x, weight, bias); }

at::Tensor LinearImpl::ForwardAdd(const at::Tensor& x, const at::Tensor& residual) const {
  return TunedLinear(x, weight, bias, residual);
}

Conv2dImpl::Conv2dImpl(const Conv2dOptions& o) : options(o) {
  weight = RegisterEmptyParameter(*this, "weight", {o.out_channels(), o.in_channels(), o.kernel_size(), o.kernel_size()});
  if (o.bias()) bias = RegisterEmptyParameter(*this, "bias", {o.out_channels()});
}

at::Tensor Conv2dImpl::forward(const at::Tensor& x) const {
  if (ctx_) return ctx_->Conv2d(site_, *this, x);
  return Compute(x);
}

at::Tensor Conv2dImpl::Compute(const at::Tensor& x) const {
  return ComputeAdd(x, options.padding(), options.padding(), at::Tensor());
}

at::Tensor Conv2dImpl::ComputeAdd(const at::Tensor& x, int64_t pad_h, int64_t pad_w, const at::Tensor& extra) const {
  const int64_t stride = options.stride();
  // The bias alone through the bias-add kernel gives ATen's bits (its bias add is a separate,
  // generic pass as well); with `extra`, one rounding instead of two.
  if ((bias.defined() || extra.defined()) && x.is_cuda() && FusedConvBiasEnabled()) {
    return FusedConvAdd(x, weight, bias, stride, pad_h, pad_w, extra);
  }
  at::Tensor y = at::conv2d(x, weight, bias, {stride, stride}, {pad_h, pad_w});
  return extra.defined() ? y.add_(extra) : y;
}

at::Tensor Conv2dImpl::ForwardAdd(const at::Tensor& x, const at::Tensor& extra) const {
  // A layer context (patch parallelism) owns the convolution and the add.
  if (ctx_) return ctx_->Conv2dAdd(site_, *this, x, extra);
  return FusedConvAdd(x, weight, bias, options.stride(), options.padding(), extra);
}

GroupNormImpl::GroupNormImpl(const GroupNormOptions& o) : options(o) {
  weight = RegisterEmptyParameter(*this, "weight", {o.num_channels()});
  bias = RegisterEmptyParameter(*this, "bias", {o.num_channels()});
}

at::Tensor GroupNormImpl::forward(const at::Tensor& x) const {
  if (ctx_) return ctx_->GroupNorm(site_, *this, x);
  return Compute(x);
}

at::Tensor GroupNormImpl::Compute(const at::Tensor& x) const {
  return FusedGroupNorm(x, options.num_groups(), weight, bias, options.eps(), /*silu=*/false);
}

at::Tensor GroupNormImpl::ForwardSilu(const at::Tensor& x) const {
  // A layer context (patch parallelism) owns the statistics: normalise there, then activate.
  if (ctx_) return ctx_->GroupNormSilu(site_, *this, x);
  return FusedGroupNorm(x, options.num_groups(), weight, bias, options.eps(), /*silu=*/true);
}

LayerNormImpl::LayerNormImpl(const LayerNormOptions& o) : options(o) {
  weight = RegisterEmptyParameter(*this, "weight", {o.dim()});
  bias = RegisterEmptyParameter(*this, "bias", {o.dim()});
}

at::Tensor LayerNormImpl::forward(const at::Tensor& x) const {
  return at::layer_norm(x, {options.dim()}, weight, bias, options.eps());
}

}  // namespace distri::model
