// AutoencoderKL configuration: diffusers' vae/config.json, read into one struct.
//
// Supported: DownEncoderBlock2D / UpDecoderBlock2D blocks, act_fn silu, the "group" norm
// decoder (no spatial norm), quant_conv/post_quant_conv present or not, mid-block attention
// on or off. Any other block type or activation is an error naming the file and the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/model/json_config.h"
#include "runtime/common/status.h"

namespace distri::model {

struct AutoencoderKLOptions {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  std::vector<int64_t> block_out_channels = {128, 256, 512, 512};  // one entry per level
  int64_t layers_per_block = 2;   // encoder resnets per level; the decoder has one more
  int64_t latent_channels = 4;
  int64_t norm_num_groups = 32;
  std::vector<int64_t> sample_size;  // informational
  // Latent scaling: UNet latents = (z - shift_factor) * scaling_factor (see autoencoder_kl.h).
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;
  // Per-channel latent statistics some models publish; informational (pipelines use them).
  std::vector<double> latents_mean;
  std::vector<double> latents_std;
  // The weights overflow in fp16 (SDXL's VAE): Decode upcasts when the model dtype is fp16.
  bool force_upcast = true;
  bool use_quant_conv = true;
  bool use_post_quant_conv = true;
  bool mid_block_add_attention = true;
  std::string config_name = "vae/config.json";

  int64_t num_levels() const { return static_cast<int64_t>(block_out_channels.size()); }
  // Image pixels per latent pixel along each axis: 2^(levels-1) (8 for SD/SDXL).
  int64_t downscale_factor() const { return int64_t{1} << (num_levels() - 1); }

  static Result<AutoencoderKLOptions> FromConfig(const JsonConfig& config);
  Status Validate() const;
};

}  // namespace distri::model
