#include "actors/model/blocks/resnet.h"

#include "actors/model/blocks/fused_ops.h"

namespace distri::model {

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetBlock2DOptions& o) : options(o) {
  const int64_t in = o.in_channels(), out = o.out_channels();
  norm1 = register_module("norm1", GroupNorm(GroupNormOptions(o.groups(), in).eps(o.eps())));
  conv1 = register_module("conv1", Conv2d(Conv2dOptions(in, out, 3)));
  if (o.temb_channels() > 0) {
    time_emb_proj = register_module("time_emb_proj", Linear(LinearOptions(o.temb_channels(), out)));
  }
  norm2 = register_module("norm2", GroupNorm(GroupNormOptions(o.groups(), out).eps(o.eps())));
  conv2 = register_module("conv2", Conv2d(Conv2dOptions(out, out, 3)));
  if (in != out) {
    conv_shortcut = register_module("conv_shortcut", Conv2d(Conv2dOptions(in, out, o.use_conv_shortcut() ? 3 : 1)));
  }
}

at::Tensor ResnetBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb) const {
  if (tp_) return tp_->ResnetBlock(tp_site_, *this, x, temb);
  // In-place activations/adds only touch tensors created here (never x or temb).
  // conv1's bias and the time embedding, then conv2's bias and the residual, are each added in
  // one pass (FusedConvAdd) where the fused kernels apply.
  at::Tensor t;
  if (time_emb_proj) {
    TORCH_CHECK(temb.defined(), "ResnetBlock2D: this block has a time embedding projection but temb is undefined");
    t = time_emb_proj->forward(at::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  }
  at::Tensor normed;
  if (t.defined() && conv1->context() == nullptr && norm2->context() == nullptr && conv1->options.stride() == 1 &&
      PreAddGroupNormEligible(x, options.out_channels())) {
    // conv1 without its bias; norm2 adds the bias and the time embedding as it reads (the sum is
    // never stored: one pass over the activation less, the same bits).
    const auto& co = conv1->options;
    at::Tensor y = at::conv2d(norm1->ForwardSilu(x), conv1->weight, {}, {co.stride(), co.stride()},
                              {co.padding(), co.padding()});
    normed = FusedPreAddGroupNorm(y, conv1->bias, t, norm2->options.num_groups(), norm2->weight, norm2->bias,
                                  norm2->options.eps(), /*silu=*/true);
    if (!normed.defined()) {  // an odd pointer or layout after all: add, then normalise
      if (conv1->bias.defined()) y.add_(conv1->bias.view({1, -1, 1, 1}));
      normed = norm2->ForwardSilu(y.add_(t));
    }
  } else {
    normed = norm2->ForwardSilu(t.defined() ? conv1->ForwardAdd(norm1->ForwardSilu(x), t)
                                            : conv1->forward(norm1->ForwardSilu(x)));
  }
  at::Tensor h = conv2->ForwardAdd(normed, conv_shortcut ? conv_shortcut->forward(x) : x);
  if (options.output_scale_factor() != 1.0) h.div_(options.output_scale_factor());
  return h;
}

}  // namespace distri::model
