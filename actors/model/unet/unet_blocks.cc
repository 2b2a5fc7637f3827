#include "actors/model/unet/unet_blocks.h"

namespace distri::model {

void UNetBlockBase::AddResnet(const UNetBlockOptions& o, int64_t in_channels, int64_t out_channels) {
  resnet_list_.emplace_back(ResnetBlock2DOptions(in_channels, out_channels)
                                .temb_channels(o.temb_channels())
                                .groups(o.groups())
                                .eps(o.eps())
                                .output_scale_factor(o.output_scale_factor()));
}

void UNetBlockBase::AddAttention(const UNetBlockOptions& o, int64_t channels) {
  attention_list_.emplace_back(
      Transformer2DModelOptions(o.num_heads(), channels / o.num_heads(), channels, o.cross_attention_dim())
          .num_layers(o.transformer_layers())
          .norm_num_groups(o.groups())
          .use_linear_projection(o.use_linear_projection())
          .upcast_attention(o.upcast_attention()));
}

void UNetBlockBase::RegisterLists(bool with_attentions) {
  // diffusers registers attentions before resnets; the order only matters for the
  // LayerSite indices, which must be the same on every rank (they are: same code).
  if (with_attentions) {
    attentions = register_module("attentions", torch::nn::ModuleList());
    for (const auto& a : attention_list_) attentions->push_back(a);
  }
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (const auto& r : resnet_list_) resnets->push_back(r);
}

// ---- down

UNetDownBlockImpl::UNetDownBlockImpl(const UNetBlockOptions& o) : options(o) {
  for (int64_t i = 0; i < o.num_layers(); ++i) {
    AddResnet(o, i == 0 ? o.in_channels() : o.out_channels(), o.out_channels());
    if (o.cross_attention()) AddAttention(o, o.out_channels());
  }
  RegisterLists(o.cross_attention());
  if (o.add_sampler()) {
    downsampler = Downsample2D(Downsample2DOptions(o.out_channels()).padding(o.downsample_padding()));
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(downsampler));
  }
}

at::Tensor UNetDownBlockImpl::forward(at::Tensor h, const at::Tensor& temb, const at::Tensor& context,
                                      std::vector<at::Tensor>& skips) const {
  for (size_t i = 0; i < resnet_list_.size(); ++i) {
    h = resnet_list_[i]->forward(h, temb);
    if (!attention_list_.empty()) h = attention_list_[i]->forward(h, context);
    skips.push_back(h);
  }
  if (downsampler) {
    h = downsampler->forward(h);
    skips.push_back(h);
  }
  return h;
}

// ---- mid

UNetMidBlockImpl::UNetMidBlockImpl(const UNetBlockOptions& o) {
  // resnets.0, then (attentions.i, resnets.i+1) for each layer.
  AddResnet(o, o.in_channels(), o.in_channels());
  for (int64_t i = 0; i < o.num_layers(); ++i) {
    AddAttention(o, o.in_channels());
    AddResnet(o, o.in_channels(), o.in_channels());
  }
  RegisterLists(/*with_attentions=*/true);
}

at::Tensor UNetMidBlockImpl::forward(at::Tensor h, const at::Tensor& temb, const at::Tensor& context) const {
  h = resnet_list_[0]->forward(h, temb);
  for (size_t i = 0; i < attention_list_.size(); ++i) {
    h = attention_list_[i]->forward(h, context);
    h = resnet_list_[i + 1]->forward(h, temb);
  }
  return h;
}

// ---- up

UNetUpBlockImpl::UNetUpBlockImpl(const UNetBlockOptions& o) : options(o) {
  for (int64_t i = 0; i < o.num_layers(); ++i) {
    // The last resnet takes the skip from the block's input level (in_channels), the others
    // skips of out_channels; the first one also takes what comes from below.
    const int64_t skip_channels = (i == o.num_layers() - 1) ? o.in_channels() : o.out_channels();
    const int64_t from_below = (i == 0) ? o.prev_output_channel() : o.out_channels();
    AddResnet(o, from_below + skip_channels, o.out_channels());
    if (o.cross_attention()) AddAttention(o, o.out_channels());
  }
  RegisterLists(o.cross_attention());
  if (o.add_sampler()) {
    upsampler = Upsample2D(Upsample2DOptions(o.out_channels()));
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(upsampler));
  }
}

at::Tensor UNetUpBlockImpl::forward(at::Tensor h, std::vector<at::Tensor>& skips, const at::Tensor& temb,
                                    const at::Tensor& context, bool match_skip_size) const {
  for (size_t i = 0; i < resnet_list_.size(); ++i) {
    TORCH_CHECK(!skips.empty(), "UNetUpBlock: the skip-connection stack is empty");
    at::Tensor skip = std::move(skips.back());
    skips.pop_back();
    h = resnet_list_[i]->forward(at::cat({h, skip}, 1), temb);
    if (!attention_list_.empty()) h = attention_list_[i]->forward(h, context);
  }
  if (upsampler) {
    if (match_skip_size && !skips.empty()) {
      h = upsampler->forward(h, skips.back().sizes().slice(2));
    } else {
      h = upsampler->forward(h);
    }
  }
  return h;
}

}  // namespace distri::model
