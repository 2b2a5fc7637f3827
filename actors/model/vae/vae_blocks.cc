#include "actors/model/vae/vae_blocks.h"

namespace distri::model {
namespace {

ResnetBlock2D MakeResnet(const VaeBlockOptions& o, int64_t in_channels) {
  return ResnetBlock2D(ResnetBlock2DOptions(in_channels, o.out_channels()).groups(o.groups()).eps(o.eps()));
}

}  // namespace

DownEncoderBlock2DImpl::DownEncoderBlock2DImpl(const VaeBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers(); ++i) {
    resnet_list_.push_back(MakeResnet(o, i == 0 ? o.in_channels() : o.out_channels()));
    resnets->push_back(resnet_list_.back());
  }
  if (o.add_sampler()) {
    downsampler_ = Downsample2D(Downsample2DOptions(o.out_channels()).padding(0));
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(downsampler_));
  }
}

at::Tensor DownEncoderBlock2DImpl::forward(at::Tensor h) const {
  for (const auto& resnet : resnet_list_) h = resnet->forward(h);
  return downsampler_ ? downsampler_->forward(h) : h;
}

UpDecoderBlock2DImpl::UpDecoderBlock2DImpl(const VaeBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers(); ++i) {
    resnet_list_.push_back(MakeResnet(o, i == 0 ? o.in_channels() : o.out_channels()));
    resnets->push_back(resnet_list_.back());
  }
  if (o.add_sampler()) {
    upsampler_ = Upsample2D(Upsample2DOptions(o.out_channels()));
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(upsampler_));
  }
}

at::Tensor UpDecoderBlock2DImpl::forward(at::Tensor h) const {
  for (const auto& resnet : resnet_list_) h = resnet->forward(h);
  return upsampler_ ? upsampler_->forward(h) : h;
}

VaeMidBlockImpl::VaeMidBlockImpl(const VaeBlockOptions& o) {
  const int64_t channels = o.in_channels();
  // diffusers: heads = channels / attention_head_dim with attention_head_dim = channels.
  if (o.add_attention()) {
    attention_ = Attention(AttentionOptions(channels, /*heads=*/1, /*dim_head=*/channels)
                               .bias(true)
                               .upcast_softmax(true)
                               .norm_num_groups(o.groups())
                               .eps(o.eps())
                               .residual_connection(true));
    attentions = register_module("attentions", torch::nn::ModuleList(attention_));
  }
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int i = 0; i < 2; ++i) {
    resnet_list_.push_back(MakeResnet(VaeBlockOptions(o).out_channels(channels), channels));
    resnets->push_back(resnet_list_.back());
  }
}

at::Tensor VaeMidBlockImpl::forward(at::Tensor h) const {
  h = resnet_list_[0]->forward(h);
  if (attention_) h = attention_->forward(h);
  return resnet_list_[1]->forward(h);
}

}  // namespace distri::model
