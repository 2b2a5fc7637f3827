#include "actors/model/blocks/attention.h"

#include <tuple>

#include "actors/model/blocks/attention_backend.h"
#include "actors/model/blocks/fused_ops.h"

namespace distri::model {

AttentionImpl::AttentionImpl(const AttentionOptions& o) : options(o) {
  const int64_t inner = o.heads() * o.dim_head();
  const int64_t kv_dim = o.cross_attention_dim() > 0 ? o.cross_attention_dim() : o.query_dim();
  if (o.norm_num_groups() > 0) {
    group_norm = register_module("group_norm", GroupNorm(GroupNormOptions(o.norm_num_groups(), o.query_dim()).eps(o.eps())));
  }
  to_q = register_module("to_q", Linear(LinearOptions(o.query_dim(), inner).bias(o.bias())));
  to_k = register_module("to_k", Linear(LinearOptions(kv_dim, inner).bias(o.bias())));
  to_v = register_module("to_v", Linear(LinearOptions(kv_dim, inner).bias(o.bias())));
  to_out_0 = Linear(LinearOptions(inner, o.query_dim()));
  to_out = register_module("to_out", torch::nn::ModuleList(to_out_0));
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& context) const {
  return ForwardAdd(x, context, {});
}

at::Tensor AttentionImpl::ForwardAdd(const at::Tensor& x, const at::Tensor& context, const at::Tensor& residual) const {
  TORCH_CHECK(context.defined() == is_cross_attention(),
              is_cross_attention() ? "Attention: cross-attention needs a context"
                                   : "Attention: self-attention takes no context");
  // Both return fresh tensors, so the add can go in place.
  auto add = [&](at::Tensor h) { return residual.defined() ? h.add_(residual) : h; };
  if (x.dim() == 4) return add(ForwardSpatial(x));
  if (tp_) return add(tp_->Attention(tp_site_, *this, x, context));
  return Attend(x, context, residual);
}

at::Tensor AttentionImpl::Attend(const at::Tensor& tokens, const at::Tensor& context,
                                 const at::Tensor& residual) const {
  const int64_t batch = tokens.size(0), heads = options.heads(), dim_head = options.dim_head();
  const int64_t inner = heads * dim_head;
  at::Tensor q, k, v;
  if (context.defined()) {
    q = to_q->forward(tokens);
    std::tie(k, v) = CrossKeyValue(context);
  } else {
    if (QkvFused()) {
      // One GEMM; q, k and v are strided views of its [B, N, 3 inner] output.
      at::Tensor qkv = TunedLinear(tokens, qkv_weight_, qkv_bias_);
      q = qkv.narrow(2, 0, inner);
      k = qkv.narrow(2, inner, inner);
      v = qkv.narrow(2, 2 * inner, inner);
    } else {
      q = to_q->forward(tokens);
      k = to_k->forward(tokens);
      v = to_v->forward(tokens);
    }
    if (ctx_) std::tie(k, v) = ctx_->SelfAttentionKeyValue(site_, std::move(k), std::move(v));
  }
  // [B, N, h*d] -> [B, h, N, d] as strided views: the SDPA kernels take them without a copy.
  q = q.view({batch, -1, heads, dim_head}).transpose(1, 2);
  k = k.view({batch, -1, heads, dim_head}).transpose(1, 2);
  v = v.view({batch, -1, heads, dim_head}).transpose(1, 2);
  at::Tensor out = ScaledDotProductAttention(q, k, v, /*cross=*/context.defined());
  if (ctx_ && !context.defined()) ctx_->SelfAttentionDone(site_);
  out = out.transpose(1, 2).reshape({batch, -1, heads * dim_head});
  return to_out_0->ForwardAdd(out, residual);
}

std::pair<at::Tensor, at::Tensor> AttentionImpl::CrossKeyValue(const at::Tensor& context) const {
  std::lock_guard<std::mutex> lock(kv_mutex_);
  if (!kv_context_.defined() || !kv_context_.is_same(context) || !k_cache_.defined() ||
      k_cache_.device() != context.device()) {
    k_cache_ = to_k->forward(context);
    v_cache_ = to_v->forward(context);
    kv_context_ = context;
  }
  return {k_cache_, v_cache_};
}

bool AttentionImpl::RecomputeCrossKeyValue(const at::Tensor& context) const {
  if (!is_cross_attention()) return true;
  std::lock_guard<std::mutex> lock(kv_mutex_);
  if (!kv_context_.defined() || !kv_context_.is_same(context) || !k_cache_.defined()) return false;
  k_cache_.copy_(to_k->forward(kv_context_));
  v_cache_.copy_(to_v->forward(kv_context_));
  return true;
}

bool AttentionImpl::QkvFused() const {
  if (!qkv_weight_.defined()) return false;
  const int64_t inner = options.heads() * options.dim_head();
  const auto* base = static_cast<const char*>(qkv_weight_.data_ptr());
  const int64_t row = qkv_weight_.size(1) * static_cast<int64_t>(qkv_weight_.element_size());
  if (to_q->weight.data_ptr() != base || to_k->weight.data_ptr() != base + inner * row ||
      to_v->weight.data_ptr() != base + 2 * inner * row) {
    return false;
  }
  if (!qkv_bias_.defined()) return !to_q->bias.defined();
  const auto* bias = static_cast<const char*>(qkv_bias_.data_ptr());
  const int64_t b = static_cast<int64_t>(qkv_bias_.element_size());
  return to_q->bias.data_ptr() == bias && to_k->bias.data_ptr() == bias + inner * b &&
         to_v->bias.data_ptr() == bias + 2 * inner * b;
}

void AttentionImpl::FuseProjections() {
  if (is_cross_attention()) return;
  at::NoGradGuard no_grad;
  const int64_t inner = options.heads() * options.dim_head();
  qkv_weight_ = at::cat({to_q->weight, to_k->weight, to_v->weight}, 0);
  to_q->weight.set_data(qkv_weight_.narrow(0, 0, inner));
  to_k->weight.set_data(qkv_weight_.narrow(0, inner, inner));
  to_v->weight.set_data(qkv_weight_.narrow(0, 2 * inner, inner));
  if (to_q->bias.defined()) {
    qkv_bias_ = at::cat({to_q->bias, to_k->bias, to_v->bias}, 0);
    to_q->bias.set_data(qkv_bias_.narrow(0, 0, inner));
    to_k->bias.set_data(qkv_bias_.narrow(0, inner, inner));
    to_v->bias.set_data(qkv_bias_.narrow(0, 2 * inner, inner));
  }
}

void FuseAttentionProjections(torch::nn::Module& root) {
  for (const auto& m : root.modules(/*include_self=*/true)) {
    if (auto* attention = dynamic_cast<AttentionImpl*>(m.get())) attention->FuseProjections();
  }
}

bool RecomputeCrossKeyValues(torch::nn::Module& root, const at::Tensor& context) {
  bool all = true;
  for (const auto& m : root.modules(/*include_self=*/true)) {
    if (const auto* attention = dynamic_cast<const AttentionImpl*>(m.get())) {
      all = attention->RecomputeCrossKeyValue(context) && all;
    }
  }
  return all;
}

at::Tensor AttentionImpl::ForwardSpatial(const at::Tensor& x) const {
  const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  // Normalising [B, C, H, W] equals diffusers' group norm of the [B, C, H*W] view.
  at::Tensor h = group_norm ? group_norm->forward(x) : x;
  // Tokens in row-major pixel order; a view when h is channels_last.
  h = h.permute({0, 2, 3, 1}).reshape({batch, height * width, channels});
  h = Attend(h, {});
  h = h.view({batch, height, width, channels}).permute({0, 3, 1, 2});
  // residual first: the result takes the residual's memory format.
  if (options.residual_connection()) h = x + h;
  if (options.rescale_output_factor() != 1.0) h = h / options.rescale_output_factor();
  return h;
}

}  // namespace distri::model
