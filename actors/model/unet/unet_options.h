// UNet2DConditionModel configuration: diffusers' unet/config.json, read into one struct.
//
// Supported (what SD 1.x, SD 2.x and SDXL checkpoints use): DownBlock2D/CrossAttnDownBlock2D,
// UpBlock2D/CrossAttnUpBlock2D, UNetMidBlock2DCrossAttn; positional timestep embedding;
// addition_embed_type null or "text_time" (SDXL); act_fn silu; resnet_time_scale_shift
// "default"; attention_type "default". Any other value of an option that changes the weights
// or the computation (class_embed_type, dual_cross_attention, only_cross_attention,
// time_cond_proj_dim, encoder_hid_dim, ...) is an error that names the file and the key.
// Options without effect on these blocks are ignored: dropout (inference),
// resnet_out_scale_factor and addition_embed_type_num_heads (used only by other block types).
//
// The number of attention heads per block: diffusers' configs call it attention_head_dim (a
// historical misnomer, diffusers issue #2011) and num_attention_heads must be null; the head
// size is then channels / heads. We read it the same way into `num_attention_heads`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/model/json_config.h"
#include "runtime/common/status.h"

namespace distri::model {

struct UNet2DConditionOptions {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  bool center_input_sample = false;  // sample = 2 * sample - 1 first
  bool flip_sin_to_cos = true;
  double freq_shift = 0.0;
  std::vector<std::string> down_block_types = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                               "CrossAttnDownBlock2D", "DownBlock2D"};
  std::string mid_block_type = "UNetMidBlock2DCrossAttn";
  std::vector<std::string> up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                             "CrossAttnUpBlock2D"};
  std::vector<int64_t> block_out_channels = {320, 640, 1280, 1280};
  // Per down block (index i); up block i uses entry n-1-i (plus one resnet).
  std::vector<int64_t> layers_per_block = {2, 2, 2, 2};
  std::vector<int64_t> cross_attention_dim = {1280, 1280, 1280, 1280};
  std::vector<int64_t> transformer_layers_per_block = {1, 1, 1, 1};
  std::vector<int64_t> num_attention_heads = {8, 8, 8, 8};
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1.0;
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  bool use_linear_projection = false;
  bool upcast_attention = false;
  std::string addition_embed_type;  // "" (none) or "text_time"
  int64_t addition_time_embed_dim = 0;
  int64_t projection_class_embeddings_input_dim = 0;
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;
  std::vector<int64_t> sample_size;  // informational: [] unknown, [s] square, or [h, w]
  std::string config_name = "unet/config.json";  // names the source in error messages

  int64_t num_blocks() const { return static_cast<int64_t>(block_out_channels.size()); }
  int64_t time_embed_dim() const { return block_out_channels.at(0) * 4; }
  bool has_text_time() const { return addition_embed_type == "text_time"; }

  // Reads and checks a diffusers UNet2DConditionModel config.
  static Result<UNet2DConditionOptions> FromConfig(const JsonConfig& config);
  // Structural checks (list lengths, divisibility); FromConfig calls it.
  Status Validate() const;
};

}  // namespace distri::model
