#include "actors/model/unet/unet_2d_condition.h"

#include <c10/util/Exception.h>

#include <utility>

#include "actors/model/blocks/module_loading.h"

namespace distri::model {

UNet2DConditionModelImpl::UNet2DConditionModelImpl(UNet2DConditionOptions options) : options_(std::move(options)) {
  const Status valid = options_.Validate();
  TORCH_CHECK(valid.ok(), valid.message());
  const auto& o = options_;
  const size_t n = o.block_out_channels.size();
  const int64_t temb = o.time_embed_dim();

  conv_in = register_module("conv_in", Conv2d(Conv2dOptions(o.in_channels, o.block_out_channels[0], o.conv_in_kernel)));
  time_proj = register_module("time_proj", Timesteps(TimestepsOptions(o.block_out_channels[0])
                                                         .flip_sin_to_cos(o.flip_sin_to_cos)
                                                         .downscale_freq_shift(o.freq_shift)));
  time_embedding = register_module("time_embedding",
                                   TimestepEmbedding(TimestepEmbeddingOptions(o.block_out_channels[0], temb)));
  if (o.has_text_time()) {
    add_time_proj = register_module("add_time_proj", Timesteps(TimestepsOptions(o.addition_time_embed_dim)
                                                                   .flip_sin_to_cos(o.flip_sin_to_cos)
                                                                   .downscale_freq_shift(o.freq_shift)));
    add_embedding = register_module(
        "add_embedding", TimestepEmbedding(TimestepEmbeddingOptions(o.projection_class_embeddings_input_dim, temb)));
  }

  auto block_options = [&](size_t i, int64_t in, int64_t out, bool cross) {
    return UNetBlockOptions(in, out, temb)
        .cross_attention(cross)
        .transformer_layers(o.transformer_layers_per_block[i])
        .num_heads(o.num_attention_heads[i])
        .cross_attention_dim(o.cross_attention_dim[i])
        .groups(o.norm_num_groups)
        .eps(o.norm_eps)
        .use_linear_projection(o.use_linear_projection)
        .upcast_attention(o.upcast_attention);
  };

  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out_channels = o.block_out_channels[0];
  for (size_t i = 0; i < n; ++i) {
    const int64_t in_channels = out_channels;
    out_channels = o.block_out_channels[i];
    auto bo = block_options(i, in_channels, out_channels, o.down_block_types[i] == "CrossAttnDownBlock2D")
                  .num_layers(o.layers_per_block[i])
                  .add_sampler(i + 1 < n)
                  .downsample_padding(o.downsample_padding);
    down_.emplace_back(bo);
    down_blocks->push_back(down_.back());
  }

  const int64_t deepest = o.block_out_channels.back();
  mid_block = register_module(
      "mid_block", UNetMidBlock(block_options(n - 1, deepest, deepest, true).output_scale_factor(o.mid_block_scale_factor)));

  // Up block i mirrors down block n-1-i (diffusers reverses every per-block list).
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  out_channels = deepest;
  for (size_t i = 0; i < n; ++i) {
    const size_t mirror = n - 1 - i;
    const int64_t prev_output = out_channels;
    out_channels = o.block_out_channels[mirror];
    const int64_t in_channels = o.block_out_channels[mirror == 0 ? 0 : mirror - 1];
    auto bo = block_options(mirror, in_channels, out_channels, o.up_block_types[i] == "CrossAttnUpBlock2D")
                  .prev_output_channel(prev_output)
                  .num_layers(o.layers_per_block[mirror] + 1)
                  .add_sampler(i + 1 < n);
    up_.emplace_back(bo);
    up_blocks->push_back(up_.back());
  }

  conv_norm_out = register_module(
      "conv_norm_out", GroupNorm(GroupNormOptions(o.norm_num_groups, o.block_out_channels[0]).eps(o.norm_eps)));
  conv_out = register_module("conv_out", Conv2d(Conv2dOptions(o.block_out_channels[0], o.out_channels, o.conv_out_kernel)));
}

at::Tensor UNet2DConditionModelImpl::TimeEmbedding(const at::Tensor& sample, const at::Tensor& timestep,
                                                   const std::optional<UNetAddedConditions>& added) const {
  const int64_t batch = sample.size(0);
  at::Tensor t = timestep.dim() == 0 ? timestep.reshape({1}) : timestep;
  TORCH_CHECK(t.dim() == 1 && (t.size(0) == 1 || t.size(0) == batch),
              "UNet2DConditionModel: timestep must be 0-d, [1] or [", batch, "], got ", timestep.sizes());
  t = t.to(sample.device()).expand({batch});
  // Timesteps are embedded in fp32 and then cast to the model dtype, as diffusers does.
  at::Tensor emb = time_embedding->forward(time_proj->forward(t).to(sample.scalar_type()));

  if (options_.has_text_time()) {
    TORCH_CHECK(added.has_value() && added->text_embeds.defined() && added->time_ids.defined(),
                "UNet2DConditionModel: this model (addition_embed_type text_time, SDXL) needs text_embeds and time_ids");
    const at::Tensor& text_embeds = added->text_embeds;
    at::Tensor time_embeds = add_time_proj->forward(added->time_ids.flatten()).reshape({text_embeds.size(0), -1});
    at::Tensor add_embeds = at::cat({text_embeds, time_embeds}, -1).to(emb.scalar_type());
    TORCH_CHECK(add_embeds.size(-1) == options_.projection_class_embeddings_input_dim,
                "UNet2DConditionModel: text_embeds (", text_embeds.size(-1), ") + time_ids embedding (",
                time_embeds.size(-1), ") != projection_class_embeddings_input_dim ",
                options_.projection_class_embeddings_input_dim);
    emb = emb + add_embedding->forward(add_embeds);
  }
  return emb;
}

at::Tensor UNet2DConditionModelImpl::forward(const at::Tensor& sample, const at::Tensor& timestep,
                                             const at::Tensor& encoder_hidden_states,
                                             const std::optional<UNetAddedConditions>& added) const {
  TORCH_CHECK(sample.dim() == 4 && sample.size(1) == options_.in_channels, "UNet2DConditionModel: sample must be [B, ",
              options_.in_channels, ", h, w], got ", sample.sizes());
  TORCH_CHECK(encoder_hidden_states.dim() == 3, "UNet2DConditionModel: encoder_hidden_states must be [B, tokens, dim], got ",
              encoder_hidden_states.sizes());
  const at::Tensor emb = TimeEmbedding(sample, timestep, added);

  // Sizes that the down path does not halve exactly need the up path to match skip sizes.
  const int64_t factor = int64_t{1} << num_upsamplers();
  const bool match_skip_size = sample.size(2) % factor != 0 || sample.size(3) % factor != 0;

  at::Tensor h = options_.center_input_sample ? sample * 2.0 - 1.0 : sample;
  h = conv_in->forward(h);
  std::vector<at::Tensor> skips;
  skips.push_back(h);
  for (const auto& block : down_) h = block->forward(h, emb, encoder_hidden_states, skips);
  h = mid_block->forward(h, emb, encoder_hidden_states);
  for (const auto& block : up_) h = block->forward(h, skips, emb, encoder_hidden_states, match_skip_size);
  return conv_out->forward(conv_norm_out->ForwardSilu(h));
}

Result<UNet2DConditionModel> LoadUNet(const std::string& dir, const std::string& variant, at::ScalarType dtype,
                                      c10::Device device) {
  return LoadDiffusersModel<UNet2DConditionModel, UNet2DConditionOptions>(dir, variant, dtype, device, "UNet");
}

}  // namespace distri::model
