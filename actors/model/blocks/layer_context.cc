#include "actors/model/blocks/layer_context.h"

#include <array>

#include "actors/model/blocks/layers.h"

namespace distri::model {

at::Tensor LayerContext::Conv2d(const LayerSite&, const Conv2dImpl& conv, const at::Tensor& x) {
  return conv.Compute(x);
}

at::Tensor LayerContext::Conv2dAdd(const LayerSite& site, const Conv2dImpl& conv, const at::Tensor& x,
                                   const at::Tensor& extra) {
  return Conv2d(site, conv, x).add_(extra);
}

at::Tensor LayerContext::GroupNorm(const LayerSite&, const GroupNormImpl& norm, const at::Tensor& x) {
  return norm.Compute(x);
}

at::Tensor LayerContext::GroupNormSilu(const LayerSite& site, const GroupNormImpl& norm, const at::Tensor& x) {
  at::Tensor y = GroupNorm(site, norm, x);
  return at::silu_(y);
}

void LayerContext::SelfAttentionDone(const LayerSite&) {}

std::pair<at::Tensor, at::Tensor> LayerContext::SelfAttentionKeyValue(const LayerSite&, at::Tensor k, at::Tensor v) {
  return {std::move(k), std::move(v)};
}

std::vector<LayerSite> AttachLayerContext(torch::nn::Module& root, std::shared_ptr<LayerContext> ctx) {
  std::vector<LayerSite> sites;
  std::array<int64_t, 3> next_index{0, 0, 0};
  // named_modules() walks in registration order, which is the same on every rank.
  for (const auto& item : root.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    auto* hooked = dynamic_cast<HookedLayer*>(item.value().get());
    if (hooked == nullptr || !hooked->wants_context()) continue;
    LayerSite site;
    site.name = item.key();
    site.kind = hooked->kind();
    site.index = next_index[static_cast<size_t>(site.kind)]++;
    hooked->AttachContext(ctx, site);
    sites.push_back(std::move(site));
  }
  return sites;
}

}  // namespace distri::model
