#include "actors/pipeline/model_init.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <filesystem>

#include "actors/model/clip_text_model.h"
#include "actors/model/clip_tokenizer.h"
#include "actors/model/json_config.h"
#include "actors/model/safetensors.h"
#include "actors/model/unet/unet_2d_condition.h"
#include "actors/model/vae/autoencoder_kl.h"
#include "actors/pipeline/model_presets.h"

namespace distri::pipeline {
namespace {

// Random values with the scale of a trained network: norm scales near 1, biases small,
// weights ~ N(0, 1/fan_in), so activations neither vanish nor blow up through the layers and
// the tiny model's images are not constant.
void Randomize(torch::nn::Module& m, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : m.named_parameters(true)) {
    at::Tensor& t = p.value();
    const std::string& name = p.key();
    at::Tensor v;
    if (t.dim() <= 1) {
      bool is_scale = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
      v = at::randn(t.sizes(), gen, at::kFloat) * 0.02 + (is_scale ? 1.0 : 0.0);
    } else {
      double fan_in = static_cast<double>(t.numel() / t.size(0));
      v = at::randn(t.sizes(), gen, at::kFloat) / std::sqrt(fan_in);
    }
    t.copy_(v);
  }
}

Status Save(torch::nn::Module& m, const std::string& path, at::ScalarType dtype) {
  model::TensorMap tensors;
  for (auto& p : m.named_parameters(true)) tensors[p.key()] = p.value().to(dtype);
  for (auto& b : m.named_buffers(true)) tensors[b.key()] = b.value().is_floating_point() ? b.value().to(dtype) : b.value();
  return model::SaveSafetensors(path, tensors, {{"format", "pt"}});
}

}  // namespace

Status InitRandomModel(const std::string& dir, const ModelInitOptions& o) {
  DISTRI_RETURN_IF_ERROR(WritePresetConfigs(o.arch, dir));
  c10::InferenceMode guard(false);
  torch::NoGradGuard no_grad;
  const std::string suffix = o.fp16_variant_name ? ".fp16.safetensors" : ".safetensors";
  bool xl = std::filesystem::exists(dir + "/text_encoder_2/config.json");
  try {
    DISTRI_RETURN_IF_ERROR(model::WriteTinyClipTokenizer(dir + "/tokenizer"));
    if (xl) DISTRI_RETURN_IF_ERROR(model::WriteTinyClipTokenizer(dir + "/tokenizer_2", "!"));
    uint64_t seed = o.seed;
    for (const char* te : {"text_encoder", "text_encoder_2"}) {
      std::string sub = dir + "/" + te;
      if (!std::filesystem::exists(sub + "/config.json")) continue;
      DISTRI_ASSIGN_OR_RETURN(model::JsonConfig cfg, model::JsonConfig::Load(sub + "/config.json"));
      DISTRI_ASSIGN_OR_RETURN(auto opts, model::ClipTextModelOptions::FromConfig(cfg));
      model::ClipTextModel m(opts, at::kFloat);
      Randomize(*m, ++seed);
      DISTRI_RETURN_IF_ERROR(Save(*m, sub + "/model" + suffix, o.dtype));
    }
    {
      DISTRI_ASSIGN_OR_RETURN(model::JsonConfig cfg, model::JsonConfig::Load(dir + "/unet/config.json"));
      DISTRI_ASSIGN_OR_RETURN(auto opts, model::UNet2DConditionOptions::FromConfig(cfg));
      model::UNet2DConditionModel m(opts);
      Randomize(*m, ++seed);
      DISTRI_RETURN_IF_ERROR(Save(*m, dir + "/unet/diffusion_pytorch_model" + suffix, o.dtype));
    }
    {
      DISTRI_ASSIGN_OR_RETURN(model::JsonConfig cfg, model::JsonConfig::Load(dir + "/vae/config.json"));
      DISTRI_ASSIGN_OR_RETURN(auto opts, model::AutoencoderKLOptions::FromConfig(cfg));
      model::AutoencoderKL m(opts);
      Randomize(*m, ++seed);
      DISTRI_RETURN_IF_ERROR(Save(*m, dir + "/vae/diffusion_pytorch_model" + suffix, o.dtype));
    }
  } catch (const c10::Error& e) {
    return Status::Internal("model init: " + std::string(e.what_without_backtrace()));
  }
  return Status::Ok();
}

}  // namespace distri::pipeline
