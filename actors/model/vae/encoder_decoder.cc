#include "actors/model/vae/encoder_decoder.h"

namespace distri::model {
namespace {
constexpr double kVaeEps = 1e-6;
}  // namespace

EncoderImpl::EncoderImpl(const AutoencoderKLOptions& o) {
  const auto& channels = o.block_out_channels;
  const size_t n = channels.size();
  conv_in = register_module("conv_in", Conv2d(Conv2dOptions(o.in_channels, channels[0], 3)));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out = channels[0];
  for (size_t i = 0; i < n; ++i) {
    const int64_t in = out;
    out = channels[i];
    down_.emplace_back(VaeBlockOptions(in, out)
                           .num_layers(o.layers_per_block)
                           .groups(o.norm_num_groups)
                           .eps(kVaeEps)
                           .add_sampler(i + 1 < n));
    down_blocks->push_back(down_.back());
  }
  mid_block = register_module("mid_block", VaeMidBlock(VaeBlockOptions(channels.back(), channels.back())
                                                           .groups(o.norm_num_groups)
                                                           .eps(kVaeEps)
                                                           .add_attention(o.mid_block_add_attention)));
  conv_norm_out = register_module(
      "conv_norm_out", GroupNorm(GroupNormOptions(o.norm_num_groups, channels.back()).eps(kVaeEps)));
  conv_out = register_module("conv_out", Conv2d(Conv2dOptions(channels.back(), 2 * o.latent_channels, 3)));
}

at::Tensor EncoderImpl::forward(const at::Tensor& images) const {
  at::Tensor h = conv_in->forward(images);
  for (const auto& block : down_) h = block->forward(h);
  h = mid_block->forward(h);
  return conv_out->forward(conv_norm_out->ForwardSilu(h));
}

DecoderImpl::DecoderImpl(const AutoencoderKLOptions& o) {
  const auto& channels = o.block_out_channels;
  const size_t n = channels.size();
  conv_in = register_module("conv_in", Conv2d(Conv2dOptions(o.latent_channels, channels.back(), 3)));
  mid_block = register_module("mid_block", VaeMidBlock(VaeBlockOptions(channels.back(), channels.back())
                                                           .groups(o.norm_num_groups)
                                                           .eps(kVaeEps)
                                                           .add_attention(o.mid_block_add_attention)));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  int64_t out = channels.back();
  for (size_t i = 0; i < n; ++i) {
    const int64_t in = out;
    out = channels[n - 1 - i];
    up_.emplace_back(VaeBlockOptions(in, out)
                         .num_layers(o.layers_per_block + 1)
                         .groups(o.norm_num_groups)
                         .eps(kVaeEps)
                         .add_sampler(i + 1 < n));
    up_blocks->push_back(up_.back());
  }
  conv_norm_out = register_module(
      "conv_norm_out", GroupNorm(GroupNormOptions(o.norm_num_groups, channels[0]).eps(kVaeEps)));
  conv_out = register_module("conv_out", Conv2d(Conv2dOptions(channels[0], o.out_channels, 3)));
}

at::Tensor DecoderImpl::forward(const at::Tensor& z) const {
  at::Tensor h = conv_in->forward(z);
  h = mid_block->forward(h);
  for (const auto& block : up_) h = block->forward(h);
  return conv_out->forward(conv_norm_out->ForwardSilu(h));
}

}  // namespace distri::model
