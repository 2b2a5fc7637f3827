#include "actors/model/unet/unet_options.h"

#include <algorithm>
#include <string_view>

namespace distri::model {
namespace {

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// Options that select features distri does not implement must be null/absent.
Status RequireNull(const JsonConfig& config, std::string_view key) {
  if (!config.Has(key)) return Status::Ok();
  auto text = config.GetString(key);
  std::string value = text.ok() ? Quote(*text) : "a value";
  return config.Error(key, value + " is not supported (distri supports only null)");
}

Status RequireFalse(const JsonConfig& config, std::string_view key) {
  DISTRI_ASSIGN_OR_RETURN(bool value, config.GetBool(key, false));
  if (value) return config.Error(key, "true is not supported (distri supports only false)");
  return Status::Ok();
}

Status RequireOneOf(const JsonConfig& config, std::string_view key, const std::string& fallback,
                    const std::vector<std::string>& allowed, std::string* out = nullptr) {
  DISTRI_ASSIGN_OR_RETURN(std::string value, config.GetString(key, fallback));
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    return config.Error(key, Quote(value) + " is not supported (supported: " + Join(allowed) + ")");
  }
  if (out != nullptr) *out = value;
  return Status::Ok();
}

Status CheckBlockTypes(const JsonConfig& config, std::string_view key, const std::vector<std::string>& types,
                       const std::vector<std::string>& allowed) {
  for (const auto& type : types) {
    if (std::find(allowed.begin(), allowed.end(), type) == allowed.end()) {
      return config.Error(key, Quote(type) + " is not supported (supported: " + Join(allowed) + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<UNet2DConditionOptions> UNet2DConditionOptions::FromConfig(const JsonConfig& c) {
  UNet2DConditionOptions o;
  o.config_name = c.name();
  DISTRI_RETURN_IF_ERROR(RequireOneOf(c, "_class_name", "UNet2DConditionModel", {"UNet2DConditionModel"}));

  // Features that would change the weights or the computation and that no supported
  // checkpoint uses: refuse rather than compute something else.
  for (std::string_view key : {"num_class_embeds", "class_embed_type", "encoder_hid_dim", "encoder_hid_dim_type",
                               "time_cond_proj_dim", "time_embedding_dim", "time_embedding_act_fn",
                               "timestep_post_act", "cross_attention_norm", "reverse_transformer_layers_per_block"}) {
    DISTRI_RETURN_IF_ERROR(RequireNull(c, key));
  }
  if (c.Has("num_attention_heads")) {
    return c.Error("num_attention_heads",
                   "must be null: diffusers 0.42 refuses it too and takes the number of heads from "
                   "attention_head_dim");
  }
  for (std::string_view key : {"dual_cross_attention", "only_cross_attention", "mid_block_only_cross_attention",
                               "resnet_skip_time_act", "class_embeddings_concat"}) {
    DISTRI_RETURN_IF_ERROR(RequireFalse(c, key));
  }
  DISTRI_RETURN_IF_ERROR(RequireOneOf(c, "time_embedding_type", "positional", {"positional"}));
  DISTRI_RETURN_IF_ERROR(RequireOneOf(c, "attention_type", "default", {"default"}));
  DISTRI_RETURN_IF_ERROR(RequireOneOf(c, "resnet_time_scale_shift", "default", {"default"}));
  DISTRI_RETURN_IF_ERROR(RequireOneOf(c, "act_fn", "silu", {"silu", "swish"}));
  DISTRI_RETURN_IF_ERROR(
      RequireOneOf(c, "mid_block_type", "UNetMidBlock2DCrossAttn", {"UNetMidBlock2DCrossAttn"}, &o.mid_block_type));
  DISTRI_RETURN_IF_ERROR(RequireOneOf(c, "addition_embed_type", "", {"", "text_time"}, &o.addition_embed_type));

  DISTRI_ASSIGN_OR_RETURN(o.in_channels, c.GetInt("in_channels", 4));
  DISTRI_ASSIGN_OR_RETURN(o.out_channels, c.GetInt("out_channels", 4));
  DISTRI_ASSIGN_OR_RETURN(o.center_input_sample, c.GetBool("center_input_sample", false));
  DISTRI_ASSIGN_OR_RETURN(o.flip_sin_to_cos, c.GetBool("flip_sin_to_cos", true));
  DISTRI_ASSIGN_OR_RETURN(o.freq_shift, c.GetDouble("freq_shift", 0.0));
  if (c.Has("down_block_types")) {
    DISTRI_ASSIGN_OR_RETURN(o.down_block_types, c.GetStringList("down_block_types"));
  }
  if (c.Has("up_block_types")) {
    DISTRI_ASSIGN_OR_RETURN(o.up_block_types, c.GetStringList("up_block_types"));
  }
  DISTRI_RETURN_IF_ERROR(
      CheckBlockTypes(c, "down_block_types", o.down_block_types, {"DownBlock2D", "CrossAttnDownBlock2D"}));
  DISTRI_RETURN_IF_ERROR(CheckBlockTypes(c, "up_block_types", o.up_block_types, {"UpBlock2D", "CrossAttnUpBlock2D"}));
  if (c.Has("block_out_channels")) {
    DISTRI_ASSIGN_OR_RETURN(o.block_out_channels, c.GetIntList("block_out_channels"));
  }
  const size_t n = o.down_block_types.size();
  if (o.block_out_channels.size() != n) {
    return c.Error("block_out_channels", "has " + std::to_string(o.block_out_channels.size()) +
                                             " entries, down_block_types has " + std::to_string(n));
  }
  DISTRI_ASSIGN_OR_RETURN(o.layers_per_block, c.GetIntOrList("layers_per_block", n, 2));
  DISTRI_ASSIGN_OR_RETURN(o.cross_attention_dim, c.GetIntOrList("cross_attention_dim", n, 1280));
  DISTRI_ASSIGN_OR_RETURN(o.transformer_layers_per_block, c.GetIntOrList("transformer_layers_per_block", n, 1));
  DISTRI_ASSIGN_OR_RETURN(o.num_attention_heads, c.GetIntOrList("attention_head_dim", n, 8));
  DISTRI_ASSIGN_OR_RETURN(o.downsample_padding, c.GetInt("downsample_padding", 1));
  DISTRI_ASSIGN_OR_RETURN(o.mid_block_scale_factor, c.GetDouble("mid_block_scale_factor", 1.0));
  DISTRI_ASSIGN_OR_RETURN(o.norm_num_groups, c.GetInt("norm_num_groups", 32));
  DISTRI_ASSIGN_OR_RETURN(o.norm_eps, c.GetDouble("norm_eps", 1e-5));
  DISTRI_ASSIGN_OR_RETURN(o.use_linear_projection, c.GetBool("use_linear_projection", false));
  DISTRI_ASSIGN_OR_RETURN(o.upcast_attention, c.GetBool("upcast_attention", false));
  DISTRI_ASSIGN_OR_RETURN(o.conv_in_kernel, c.GetInt("conv_in_kernel", 3));
  DISTRI_ASSIGN_OR_RETURN(o.conv_out_kernel, c.GetInt("conv_out_kernel", 3));
  if (o.has_text_time()) {
    DISTRI_ASSIGN_OR_RETURN(o.addition_time_embed_dim, c.GetInt("addition_time_embed_dim"));
    DISTRI_ASSIGN_OR_RETURN(o.projection_class_embeddings_input_dim,
                            c.GetInt("projection_class_embeddings_input_dim"));
  }
  if (c.Has("sample_size")) {
    auto single = c.GetInt("sample_size");
    if (single.ok()) {
      o.sample_size = {*single};
    } else {
      DISTRI_ASSIGN_OR_RETURN(o.sample_size, c.GetIntList("sample_size"));
    }
  }
  DISTRI_RETURN_IF_ERROR(o.Validate());
  return o;
}

Status UNet2DConditionOptions::Validate() const {
  auto error = [this](std::string_view key, const std::string& what) {
    return Status::InvalidArgument(config_name + ": " + std::string(key) + ": " + what);
  };
  const size_t n = down_block_types.size();
  if (n == 0) return error("down_block_types", "must not be empty");
  if (up_block_types.size() != n) {
    return error("up_block_types", "has " + std::to_string(up_block_types.size()) +
                                       " entries, down_block_types has " + std::to_string(n));
  }
  auto check_len = [&](std::string_view key, size_t size) -> Status {
    if (size != n) return error(key, "has " + std::to_string(size) + " entries, expected " + std::to_string(n));
    return Status::Ok();
  };
  DISTRI_RETURN_IF_ERROR(check_len("block_out_channels", block_out_channels.size()));
  DISTRI_RETURN_IF_ERROR(check_len("layers_per_block", layers_per_block.size()));
  DISTRI_RETURN_IF_ERROR(check_len("cross_attention_dim", cross_attention_dim.size()));
  DISTRI_RETURN_IF_ERROR(check_len("transformer_layers_per_block", transformer_layers_per_block.size()));
  DISTRI_RETURN_IF_ERROR(check_len("attention_head_dim", num_attention_heads.size()));
  if (in_channels <= 0 || out_channels <= 0) return error("in_channels", "channels must be positive");
  if (norm_num_groups <= 0) return error("norm_num_groups", "must be positive");
  if (conv_in_kernel <= 0 || conv_in_kernel % 2 == 0) return error("conv_in_kernel", "must be odd");
  if (conv_out_kernel <= 0 || conv_out_kernel % 2 == 0) return error("conv_out_kernel", "must be odd");
  for (size_t i = 0; i < n; ++i) {
    const int64_t channels = block_out_channels[i];
    if (channels <= 0 || channels % norm_num_groups != 0) {
      return error("block_out_channels", std::to_string(channels) + " is not a positive multiple of norm_num_groups " +
                                             std::to_string(norm_num_groups));
    }
    if (layers_per_block[i] <= 0) return error("layers_per_block", "entries must be positive");
    if (num_attention_heads[i] <= 0 || channels % num_attention_heads[i] != 0) {
      return error("attention_head_dim", "block " + std::to_string(i) + ": " + std::to_string(channels) +
                                             " channels do not split into " + std::to_string(num_attention_heads[i]) +
                                             " heads");
    }
    if (transformer_layers_per_block[i] <= 0) return error("transformer_layers_per_block", "entries must be positive");
    if (cross_attention_dim[i] <= 0) return error("cross_attention_dim", "entries must be positive");
  }
  if (has_text_time()) {
    if (addition_time_embed_dim <= 0) return error("addition_time_embed_dim", "must be positive for text_time");
    if (projection_class_embeddings_input_dim <= 0) {
      return error("projection_class_embeddings_input_dim", "must be positive for text_time");
    }
  }
  return Status::Ok();
}

}  // namespace distri::model
