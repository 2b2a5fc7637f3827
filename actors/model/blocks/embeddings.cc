#include "actors/model/blocks/embeddings.h"

#include <cmath>

namespace distri::model {

at::Tensor TimestepsImpl::forward(const at::Tensor& timesteps) const {
  TORCH_CHECK(timesteps.dim() == 1, "Timesteps: expected a 1-d tensor of timesteps, got shape ", timesteps.sizes());
  const int64_t half = options.num_channels() / 2;
  // Same operation order as diffusers (fp32 throughout) so that fp32 results match bit for bit.
  at::Tensor exponent = at::arange(0, half, at::TensorOptions().dtype(at::kFloat).device(timesteps.device()));
  exponent = exponent * (-std::log(options.max_period()));
  exponent = exponent / (static_cast<double>(half) - options.downscale_freq_shift());
  at::Tensor emb = timesteps.unsqueeze(1).to(at::kFloat) * exponent.exp().unsqueeze(0);
  if (options.scale() != 1.0) emb = emb * options.scale();
  emb = options.flip_sin_to_cos() ? at::cat({emb.cos(), emb.sin()}, -1) : at::cat({emb.sin(), emb.cos()}, -1);
  if (options.num_channels() % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1, 0, 0});
  return emb;
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(const TimestepEmbeddingOptions& o) {
  linear_1 = register_module("linear_1", Linear(LinearOptions(o.in_channels(), o.time_embed_dim())));
  linear_2 = register_module("linear_2", Linear(LinearOptions(o.time_embed_dim(), o.time_embed_dim())));
}

at::Tensor TimestepEmbeddingImpl::forward(const at::Tensor& sample) const {
  return linear_2->forward(at::silu(linear_1->forward(sample)));
}

}  // namespace distri::model
