#include "actors/model/blocks/feed_forward.h"

#include <torch/nn/modules/linear.h>

#include "actors/model/blocks/fused_ops.h"

namespace distri::model {

GEGLUImpl::GEGLUImpl(int64_t dim_in, int64_t dim_out) {
  proj = register_module("proj", Linear(LinearOptions(dim_in, dim_out * 2)));
}

at::Tensor GEGLUImpl::forward(const at::Tensor& x) const {
  return FusedGeglu(proj->forward(x));
}

FeedForwardImpl::FeedForwardImpl(const FeedForwardOptions& o) {
  const int64_t inner = o.dim() * o.mult();
  geglu = GEGLU(o.dim(), inner);
  out = Linear(LinearOptions(inner, o.dim_out()));
  net = register_module("net", torch::nn::ModuleList(geglu, torch::nn::Identity(), out));
}

}  // namespace distri::model
