#include "actors/model/vae/vae_options.h"

#include <string_view>

namespace distri::model {
namespace {

Status CheckAll(const JsonConfig& config, std::string_view key, const std::string& expected, size_t count) {
  if (!config.Has(key)) return Status::Ok();
  DISTRI_ASSIGN_OR_RETURN(std::vector<std::string> types, config.GetStringList(key));
  for (const auto& type : types) {
    if (type != expected) return config.Error(key, "\"" + type + "\" is not supported (supported: " + expected + ")");
  }
  if (types.size() != count) {
    return config.Error(key, "has " + std::to_string(types.size()) + " entries, block_out_channels has " +
                                 std::to_string(count));
  }
  return Status::Ok();
}

}  // namespace

Result<AutoencoderKLOptions> AutoencoderKLOptions::FromConfig(const JsonConfig& c) {
  AutoencoderKLOptions o;
  o.config_name = c.name();
  DISTRI_ASSIGN_OR_RETURN(std::string class_name, c.GetString("_class_name", "AutoencoderKL"));
  if (class_name != "AutoencoderKL") {
    return c.Error("_class_name", "\"" + class_name + "\" is not supported (supported: AutoencoderKL)");
  }
  DISTRI_ASSIGN_OR_RETURN(std::string act_fn, c.GetString("act_fn", "silu"));
  if (act_fn != "silu" && act_fn != "swish") {
    return c.Error("act_fn", "\"" + act_fn + "\" is not supported (supported: silu, swish)");
  }
  DISTRI_ASSIGN_OR_RETURN(o.in_channels, c.GetInt("in_channels", 3));
  DISTRI_ASSIGN_OR_RETURN(o.out_channels, c.GetInt("out_channels", 3));
  if (c.Has("block_out_channels")) {
    DISTRI_ASSIGN_OR_RETURN(o.block_out_channels, c.GetIntList("block_out_channels"));
  } else {
    o.block_out_channels = {64};  // diffusers' default
  }
  DISTRI_RETURN_IF_ERROR(CheckAll(c, "down_block_types", "DownEncoderBlock2D", o.block_out_channels.size()));
  DISTRI_RETURN_IF_ERROR(CheckAll(c, "up_block_types", "UpDecoderBlock2D", o.block_out_channels.size()));
  DISTRI_ASSIGN_OR_RETURN(o.layers_per_block, c.GetInt("layers_per_block", 1));
  DISTRI_ASSIGN_OR_RETURN(o.latent_channels, c.GetInt("latent_channels", 4));
  DISTRI_ASSIGN_OR_RETURN(o.norm_num_groups, c.GetInt("norm_num_groups", 32));
  if (c.Has("sample_size")) {
    auto single = c.GetInt("sample_size");
    if (single.ok()) {
      o.sample_size = {*single};
    } else {
      DISTRI_ASSIGN_OR_RETURN(o.sample_size, c.GetIntList("sample_size"));
    }
  }
  DISTRI_ASSIGN_OR_RETURN(o.scaling_factor, c.GetDouble("scaling_factor", 0.18215));
  if (c.Has("shift_factor")) {
    DISTRI_ASSIGN_OR_RETURN(double shift, c.GetDouble("shift_factor"));
    o.shift_factor = shift;
  }
  if (c.Has("latents_mean")) {
    DISTRI_ASSIGN_OR_RETURN(o.latents_mean, c.GetDoubleList("latents_mean"));
  }
  if (c.Has("latents_std")) {
    DISTRI_ASSIGN_OR_RETURN(o.latents_std, c.GetDoubleList("latents_std"));
  }
  DISTRI_ASSIGN_OR_RETURN(o.force_upcast, c.GetBool("force_upcast", true));
  DISTRI_ASSIGN_OR_RETURN(o.use_quant_conv, c.GetBool("use_quant_conv", true));
  DISTRI_ASSIGN_OR_RETURN(o.use_post_quant_conv, c.GetBool("use_post_quant_conv", true));
  DISTRI_ASSIGN_OR_RETURN(o.mid_block_add_attention, c.GetBool("mid_block_add_attention", true));
  DISTRI_RETURN_IF_ERROR(o.Validate());
  return o;
}

Status AutoencoderKLOptions::Validate() const {
  auto error = [this](std::string_view key, const std::string& what) {
    return Status::InvalidArgument(config_name + ": " + std::string(key) + ": " + what);
  };
  if (block_out_channels.empty()) return error("block_out_channels", "must not be empty");
  if (norm_num_groups <= 0) return error("norm_num_groups", "must be positive");
  for (int64_t channels : block_out_channels) {
    if (channels <= 0 || channels % norm_num_groups != 0) {
      return error("block_out_channels", std::to_string(channels) + " is not a positive multiple of norm_num_groups " +
                                             std::to_string(norm_num_groups));
    }
  }
  if (layers_per_block <= 0) return error("layers_per_block", "must be positive");
  if (latent_channels <= 0) return error("latent_channels", "must be positive");
  if (in_channels <= 0 || out_channels <= 0) return error("in_channels", "channels must be positive");
  if (scaling_factor == 0.0) return error("scaling_factor", "must not be 0");
  return Status::Ok();
}

}  // namespace distri::model
