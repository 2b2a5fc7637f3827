// UNet2DConditionModel (diffusers unets/unet_2d_condition.py) for SD 1.x, SD 2.x and SDXL,
// weight-compatible with diffusers 0.42: every submodule has diffusers' state-dict name
// (conv_in, time_embedding.linear_1, add_embedding.linear_1, down_blocks.1.attentions.0.
// transformer_blocks.0.attn1.to_q, mid_block.resnets.0.norm1, up_blocks.0.upsamplers.0.conv,
// conv_norm_out, conv_out), so a diffusers checkpoint loads by name.
//
// Usage:
//   DISTRI_ASSIGN_OR_RETURN(UNet2DConditionModel unet, LoadUNet(model_dir + "/unet", "fp16", at::kHalf, device));
//   c10::InferenceMode guard;
//   at::Tensor eps = unet->forward(latents, t, text_states, UNetAddedConditions{pooled, time_ids});
//
// Contracts: inputs on the model's device; sample and encoder_hidden_states in the model's
// dtype (timestep: any numeric dtype). Bad shapes throw c10::Error (from LibTorch or a
// TORCH_CHECK here): forward is the hot path, so it does not return a Status. The module is
// immutable during forward, so several threads may run forward on one model (each with its
// own inputs) when no LayerContext with per-call state is attached.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <string>
#include <vector>

#include "actors/model/blocks/embeddings.h"
#include "actors/model/blocks/layers.h"
#include "actors/model/unet/unet_blocks.h"
#include "actors/model/unet/unet_options.h"
#include "runtime/common/status.h"

namespace distri::model {

// SDXL's added conditions (addition_embed_type "text_time").
struct UNetAddedConditions {
  at::Tensor text_embeds;  // [B, projection_class_embeddings_input_dim - 6 * addition_time_embed_dim]
                           // (SDXL: the pooled text embedding, [B, 1280])
  at::Tensor time_ids;     // [B, 6]: original size, crop top-left, target size
};

class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  // `options` must pass Validate() (FromConfig does it); invalid options throw c10::Error.
  // Parameters are uninitialised until loaded (LoadUNet).
  explicit UNet2DConditionModelImpl(UNet2DConditionOptions options);

  // sample: [B, in_channels, h, w], any h, w >= 1 (sizes that are not a multiple of
  // 2^(levels-1) upsample to the skip connection's size, as diffusers does).
  // timestep: 0-d, [1] or [B]. encoder_hidden_states: [B, tokens, cross_attention_dim].
  // added: required iff the config has addition_embed_type "text_time".
  // Returns the model output [B, out_channels, h, w] in the model's dtype.
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& encoder_hidden_states,
                     const std::optional<UNetAddedConditions>& added = std::nullopt) const;

  const UNet2DConditionOptions& options() const { return options_; }
  // Number of upsampling layers; latent sizes divisible by 2^this need no size matching.
  int64_t num_upsamplers() const { return static_cast<int64_t>(options_.num_blocks()) - 1; }

  Conv2d conv_in{nullptr};
  Timesteps time_proj{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  Timesteps add_time_proj{nullptr};              // text_time only
  TimestepEmbedding add_embedding{nullptr};      // text_time only
  torch::nn::ModuleList down_blocks{nullptr};
  UNetMidBlock mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  GroupNorm conv_norm_out{nullptr};
  Conv2d conv_out{nullptr};

 private:
  at::Tensor TimeEmbedding(const at::Tensor& sample, const at::Tensor& timestep,
                           const std::optional<UNetAddedConditions>& added) const;

  UNet2DConditionOptions options_;
  std::vector<UNetDownBlock> down_;
  std::vector<UNetUpBlock> up_;
};
TORCH_MODULE(UNet2DConditionModel);

// Loads a diffusers UNet folder (`dir` holds config.json and
// diffusion_pytorch_model[.<variant>].safetensors, or its sharded index). `variant` "" or e.g.
// "fp16" (falls back to the plain file). The weights are converted to `dtype` and placed on
// `device`. Errors name the config key or the tensor: unsupported option, missing/unexpected/
// mis-shaped weight.
Result<UNet2DConditionModel> LoadUNet(const std::string& dir, const std::string& variant, at::ScalarType dtype,
                                      c10::Device device);

}  // namespace distri::model
