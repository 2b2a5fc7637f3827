#include "actors/model/blocks/sampling.h"

#include <array>

namespace distri::model {

Downsample2DImpl::Downsample2DImpl(const Downsample2DOptions& o) : options(o) {
  conv = register_module("conv", Conv2d(Conv2dOptions(o.channels(), o.out_channels(), 3).stride(2).padding(o.padding())));
}

at::Tensor Downsample2DImpl::forward(const at::Tensor& x) const {
  if (options.padding() == 0) return conv->forward(at::constant_pad_nd(x, {0, 1, 0, 1}, 0));
  return conv->forward(x);
}

Upsample2DImpl::Upsample2DImpl(const Upsample2DOptions& o) : options(o) {
  conv = register_module("conv", Conv2d(Conv2dOptions(o.channels(), o.out_channels(), 3)));
}

at::Tensor Upsample2DImpl::forward(const at::Tensor& x, std::optional<at::IntArrayRef> output_size) const {
  at::Tensor up;
  if (output_size) {
    TORCH_CHECK(output_size->size() == 2, "Upsample2D: output_size must be [H, W], got ", *output_size);
    // Like F.interpolate(size=...): no scale factors, the source index is floor(dst * in / out).
    up = at::upsample_nearest2d(x, *output_size);
  } else {
    // Like F.interpolate(scale_factor=2.0): the same kernel with explicit scales.
    const std::array<int64_t, 2> size{x.size(2) * 2, x.size(3) * 2};
    up = at::upsample_nearest2d(x, size, 2.0, 2.0);
  }
  return conv->forward(up);
}

}  // namespace distri::model
