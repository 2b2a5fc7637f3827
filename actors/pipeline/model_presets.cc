#include "actors/pipeline/model_presets.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace distri::pipeline {
namespace {

using json = nlohmann::json;

struct Preset {
  bool xl;
  json unet, vae, te, te2, scheduler;
};

json ClipConfig(bool with_projection, int hidden, int inter, int layers, int heads, int vocab,
                const char* act, int projection) {
  return {{"_class_name", with_projection ? "CLIPTextModelWithProjection" : "CLIPTextModel"},
          {"architectures", {with_projection ? "CLIPTextModelWithProjection" : "CLIPTextModel"}},
          {"model_type", "clip_text_model"},
          {"hidden_size", hidden}, {"intermediate_size", inter}, {"num_hidden_layers", layers},
          {"num_attention_heads", heads}, {"max_position_embeddings", 77}, {"vocab_size", vocab},
          {"hidden_act", act}, {"layer_norm_eps", 1e-5}, {"projection_dim", projection},
          {"bos_token_id", 0}, {"eos_token_id", 2}, {"pad_token_id", 1},
          {"attention_dropout", 0.0}, {"initializer_factor", 1.0}, {"initializer_range", 0.02},
          {"torch_dtype", "float32"}};
}

json SchedulerConfig(bool xl) {
  return {{"_class_name", xl ? "EulerDiscreteScheduler" : "DDIMScheduler"},
          {"num_train_timesteps", 1000}, {"beta_start", 0.00085}, {"beta_end", 0.012},
          {"beta_schedule", "scaled_linear"}, {"prediction_type", "epsilon"},
          {"timestep_spacing", "leading"}, {"steps_offset", 1}, {"clip_sample", false},
          {"set_alpha_to_one", false}, {"interpolation_type", "linear"},
          {"use_karras_sigmas", false}, {"trained_betas", nullptr}};
}

json VaeConfig(std::vector<int> channels, int layers, int groups, double scaling, bool upcast) {
  std::vector<std::string> down(channels.size(), "DownEncoderBlock2D"), up(channels.size(), "UpDecoderBlock2D");
  return {{"_class_name", "AutoencoderKL"}, {"act_fn", "silu"}, {"block_out_channels", channels},
          {"down_block_types", down}, {"up_block_types", up}, {"in_channels", 3}, {"out_channels", 3},
          {"latent_channels", 4}, {"layers_per_block", layers}, {"norm_num_groups", groups},
          {"sample_size", 512}, {"scaling_factor", scaling}, {"force_upcast", upcast},
          {"mid_block_add_attention", true}};
}

json UNetBase(std::vector<int> channels, json down, json up, int layers, int groups, int cross,
              json head_dim, bool linear_proj) {
  return {{"_class_name", "UNet2DConditionModel"}, {"act_fn", "silu"}, {"block_out_channels", channels},
          {"down_block_types", down}, {"up_block_types", up}, {"mid_block_type", "UNetMidBlock2DCrossAttn"},
          {"in_channels", 4}, {"out_channels", 4}, {"layers_per_block", layers}, {"norm_num_groups", groups},
          {"norm_eps", 1e-5}, {"cross_attention_dim", cross}, {"attention_head_dim", head_dim},
          {"use_linear_projection", linear_proj}, {"flip_sin_to_cos", true}, {"freq_shift", 0},
          {"center_input_sample", false}, {"downsample_padding", 1}, {"mid_block_scale_factor", 1},
          {"sample_size", 64}, {"upcast_attention", false}};
}

bool Lookup(const std::string& arch, Preset* p) {
  if (arch == "sd15" || arch == "sd15-tiny") {
    bool tiny = arch == "sd15-tiny";
    p->xl = false;
    p->unet = tiny ? UNetBase({32, 64}, {"CrossAttnDownBlock2D", "DownBlock2D"}, {"UpBlock2D", "CrossAttnUpBlock2D"},
                              1, 8, 32, 4, false)
                   : UNetBase({320, 640, 1280, 1280},
                              {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"},
                              {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}, 2, 32,
                              768, 8, false);
    p->vae = tiny ? VaeConfig({32, 32, 64, 64}, 1, 8, 0.18215, false) : VaeConfig({128, 256, 512, 512}, 2, 32, 0.18215, false);
    p->te = tiny ? ClipConfig(false, 32, 37, 2, 4, 1000, "quick_gelu", 32)
                 : ClipConfig(false, 768, 3072, 12, 12, 49408, "quick_gelu", 768);
    p->scheduler = SchedulerConfig(false);
    return true;
  }
  if (arch == "sdxl" || arch == "sdxl-tiny") {
    bool tiny = arch == "sdxl-tiny";
    p->xl = true;
    p->unet = tiny ? UNetBase({32, 64}, {"DownBlock2D", "CrossAttnDownBlock2D"}, {"CrossAttnUpBlock2D", "UpBlock2D"},
                              1, 8, 64, json::array({2, 4}), true)
                   : UNetBase({320, 640, 1280}, {"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"},
                              {"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"}, 2, 32, 2048,
                              json::array({5, 10, 20}), true);
    p->unet["addition_embed_type"] = "text_time";
    p->unet["addition_time_embed_dim"] = tiny ? 8 : 256;
    // text_embeds (text_encoder_2 projection) + 6 time ids x addition_time_embed_dim
    p->unet["projection_class_embeddings_input_dim"] = tiny ? 32 + 6 * 8 : 1280 + 6 * 256;
    p->unet["transformer_layers_per_block"] = tiny ? json::array({1, 2}) : json::array({1, 2, 10});
    p->unet["sample_size"] = tiny ? 32 : 128;
    p->vae = tiny ? VaeConfig({32, 32, 64, 64}, 1, 8, 0.13025, true) : VaeConfig({128, 256, 512, 512}, 2, 32, 0.13025, true);
    p->te = tiny ? ClipConfig(false, 32, 37, 2, 4, 1000, "quick_gelu", 32)
                 : ClipConfig(false, 768, 3072, 12, 12, 49408, "quick_gelu", 768);
    p->te2 = tiny ? ClipConfig(true, 32, 37, 2, 4, 1000, "gelu", 32)
                  : ClipConfig(true, 1280, 5120, 32, 20, 49408, "gelu", 1280);
    p->scheduler = SchedulerConfig(true);
    return true;
  }
  return false;
}

Status WriteJson(const std::string& path, const json& j) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return Status::IoError("cannot create " + path);
  out << j.dump(2) << "\n";
  return out ? Status::Ok() : Status::IoError("cannot write " + path);
}

}  // namespace

std::vector<std::string> PresetNames() { return {"sd15-tiny", "sdxl-tiny", "sd15", "sdxl"}; }

Status WritePresetConfigs(const std::string& arch, const std::string& dir) {
  Preset p;
  if (!Lookup(arch, &p)) {
    std::string names;
    for (const auto& n : PresetNames()) names += (names.empty() ? "" : ", ") + n;
    return Status::InvalidArgument("unknown model architecture '" + arch + "' (expected one of " + names + ")");
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* sub : {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}) {
    fs::create_directories(dir + "/" + sub, ec);
    if (ec) return Status::IoError("cannot create " + dir + "/" + sub + ": " + ec.message());
  }
  json index = {{"_class_name", p.xl ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline"},
                {"_diffusers_version", "0.42.1"},
                {"unet", {"diffusers", "UNet2DConditionModel"}},
                {"vae", {"diffusers", "AutoencoderKL"}},
                {"text_encoder", {"transformers", "CLIPTextModel"}},
                {"tokenizer", {"transformers", "CLIPTokenizer"}},
                {"scheduler", {"diffusers", p.scheduler["_class_name"]}}};
  if (p.xl) {
    index["text_encoder_2"] = {"transformers", "CLIPTextModelWithProjection"};
    index["tokenizer_2"] = {"transformers", "CLIPTokenizer"};
    index["force_zeros_for_empty_prompt"] = true;
    fs::create_directories(dir + "/text_encoder_2", ec);
    fs::create_directories(dir + "/tokenizer_2", ec);
    DISTRI_RETURN_IF_ERROR(WriteJson(dir + "/text_encoder_2/config.json", p.te2));
  } else {
    index["safety_checker"] = {nullptr, nullptr};
    index["feature_extractor"] = {nullptr, nullptr};
    index["requires_safety_checker"] = false;
  }
  DISTRI_RETURN_IF_ERROR(WriteJson(dir + "/model_index.json", index));
  DISTRI_RETURN_IF_ERROR(WriteJson(dir + "/unet/config.json", p.unet));
  DISTRI_RETURN_IF_ERROR(WriteJson(dir + "/vae/config.json", p.vae));
  DISTRI_RETURN_IF_ERROR(WriteJson(dir + "/text_encoder/config.json", p.te));
  DISTRI_RETURN_IF_ERROR(WriteJson(dir + "/scheduler/scheduler_config.json", p.scheduler));
  return Status::Ok();
}

}  // namespace distri::pipeline
