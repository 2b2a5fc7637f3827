#include "actors/pipeline/pipeline.h"

#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <filesystem>

#include "actors/common/step_pacer.h"
#include "actors/model/blocks/attention_backend.h"
#include "actors/model/blocks/fused_ops.h"
#include "actors/model/blocks/module_loading.h"
#include "actors/model/json_config.h"
#include "runtime/common/logging.h"

namespace distri::pipeline {
namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs `fn` and turns a LibTorch exception into a Status naming `what`.
template <typename Fn>
auto Guard(const std::string& what, Fn&& fn) -> Result<decltype(fn())> {
  try {
    return fn();
  } catch (const c10::OutOfMemoryError& e) {
    return Status::OutOfMemory(what + ": out of device memory: " + e.what_without_backtrace());
  } catch (const c10::Error& e) {
    return Status::Internal(what + ": " + e.what_without_backtrace());
  }
}

// diffusers' scheduler class -> our sampler name, for --sampler default.
std::string SamplerForClass(const std::string& cls) {
  if (cls == "EulerDiscreteScheduler") return "euler";
  if (cls == "DPMSolverMultistepScheduler") return "dpmpp_2m";
  return "ddim";
}

}  // namespace

Result<std::unique_ptr<Pipeline>> Pipeline::Load(const std::string& dir, const LoadOptions& options) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) return Status::NotFound("model folder " + dir + " does not exist");
  // A bad DISTRI_SDPA_BACKEND is refused here, before the first attention would throw.
  try {
    (void)model::SdpaBackend();
  } catch (const c10::Error& e) {
    return Status::InvalidArgument(e.what_without_backtrace());
  }
  DISTRI_ASSIGN_OR_RETURN(model::JsonConfig index, model::JsonConfig::Load(dir + "/model_index.json"));
  std::unique_ptr<Pipeline> p(new Pipeline());
  p->options_ = options;
  p->is_xl_ = index.Has("text_encoder_2") || index.Has("tokenizer_2");
  DISTRI_ASSIGN_OR_RETURN(p->force_zeros_for_empty_prompt_, index.GetBool("force_zeros_for_empty_prompt", true));

  std::vector<std::pair<std::string, std::string>> encoders = {{"tokenizer", "text_encoder"}};
  if (p->is_xl_) encoders.push_back({"tokenizer_2", "text_encoder_2"});
  for (const auto& [tok, te] : encoders) {
    auto tokenizer = model::ClipTokenizer::Load(dir + "/" + tok);
    if (!tokenizer.ok()) return tokenizer.status().WithContext(dir + "/" + tok);
    p->tokenizers_.push_back(std::move(*tokenizer));
    DISTRI_ASSIGN_OR_RETURN(model::ClipTextModel encoder,
                            model::LoadClipTextModel(dir + "/" + te, options.dtype, options.device, options.variant));
    p->text_encoders_.push_back(std::move(encoder));
  }
  DISTRI_ASSIGN_OR_RETURN(p->unet_, model::LoadUNet(dir + "/unet", options.variant, options.dtype, options.device));
  DISTRI_ASSIGN_OR_RETURN(p->vae_, model::LoadVae(dir + "/vae", options.variant, options.dtype, options.device));
  // On GPUs the UNet runs channels-last (NHWC): cuDNN's convolutions then need no layout
  // transposes and the attention blocks' pixel<->token reshapes are views (docs/perf/).
  p->channels_last_ = options.device.is_cuda();
  if (p->channels_last_) model::SetConvWeightFormat(*p->unet_, at::MemoryFormat::ChannelsLast);
  DISTRI_ASSIGN_OR_RETURN(p->scheduler_config_, samplers::LoadSchedulerConfig(dir + "/scheduler/scheduler_config.json"));
  p->default_sampler_ = SamplerForClass(p->scheduler_config_.class_name);

  const auto& uo = p->unet_->options();
  p->vae_scale_ = 1 << (p->vae_->options().num_levels() - 1);
  int64_t sample = uo.sample_size.empty() ? (p->is_xl_ ? 128 : 64) : uo.sample_size[0];
  p->default_size_ = static_cast<int>(sample * p->vae_scale_);
  if (uo.has_text_time() != p->is_xl_) {
    return Status::InvalidArgument(dir + "/unet/config.json: addition_embed_type " +
                                   std::string(uo.has_text_time() ? "text_time needs" : "is not text_time, but the model has") +
                                   " a second text encoder (text_encoder_2)");
  }
  DISTRI_LOG(INFO) << "loaded " << (p->is_xl_ ? "SDXL" : "SD") << " model from " << dir << " ("
                   << c10::toString(options.dtype) << " on " << options.device.str() << ")";
  return p;
}

Result<at::Tensor> Pipeline::EncodeOne(size_t i, const std::string& prompt, int clip_skip, at::Tensor* pooled) {
  DISTRI_ASSIGN_OR_RETURN(std::vector<int64_t> ids, tokenizers_[i].Encode(prompt));
  at::Tensor input = at::tensor(ids, at::kLong).unsqueeze(0).to(options_.device);
  DISTRI_ASSIGN_OR_RETURN(model::ClipTextOutput out, model::RunClipTextModel(text_encoders_[i], input, true));
  const auto& hs = out.hidden_states;
  if (is_xl_) {
    // SDXL: penultimate layer (clip_skip counts further back), no final layer norm;
    // the pooled output is text_encoder_2's projected embedding.
    if (pooled) *pooled = out.text_embeds.defined() ? out.text_embeds : out.pooled;
    size_t back = 2 + static_cast<size_t>(clip_skip);
    if (back > hs.size()) return Status::InvalidArgument("clip_skip: larger than the text encoder's layer count");
    return hs[hs.size() - back];
  }
  if (clip_skip == 0) return out.last_hidden_state;
  size_t back = 1 + static_cast<size_t>(clip_skip);
  if (back > hs.size()) return Status::InvalidArgument("clip_skip: larger than the text encoder's layer count");
  return Guard("text encoder", [&] { return text_encoders_[i]->ApplyFinalLayerNorm(hs[hs.size() - back]); });
}

Result<Conditioning> Pipeline::EncodePrompts(const GenerateParams& params) {
  c10::InferenceMode guard;
  Conditioning c;
  c.guidance = params.guidance > 1.0;
  auto encode_all = [&](const std::string& prompt, at::Tensor* pooled) -> Result<at::Tensor> {
    std::vector<at::Tensor> parts;
    for (size_t i = 0; i < text_encoders_.size(); ++i) {
      DISTRI_ASSIGN_OR_RETURN(at::Tensor e, EncodeOne(i, prompt, params.clip_skip, pooled));
      parts.push_back(e);
    }
    return parts.size() == 1 ? parts[0] : at::cat(parts, -1);
  };
  at::Tensor pooled, neg_pooled;
  DISTRI_ASSIGN_OR_RETURN(at::Tensor cond, encode_all(params.prompt, &pooled));
  at::Tensor embeds = cond;
  if (c.guidance) {
    at::Tensor uncond;
    if (is_xl_ && params.negative_prompt.empty() && force_zeros_for_empty_prompt_) {
      uncond = at::zeros_like(cond);
      neg_pooled = at::zeros_like(pooled);
    } else {
      DISTRI_ASSIGN_OR_RETURN(uncond, encode_all(params.negative_prompt, &neg_pooled));
    }
    embeds = at::cat({uncond, cond}, 0);
  }
  c.prompt_embeds = embeds.to(options_.dtype);
  if (is_xl_) {
    at::Tensor time_ids = at::tensor({double(params.original_height), double(params.original_width),
                                      double(params.crop_top), double(params.crop_left),
                                      double(params.target_height), double(params.target_width)},
                                     at::kDouble).unsqueeze(0).to(options_.device, options_.dtype);
    model::UNetAddedConditions added;
    added.text_embeds = c.guidance ? at::cat({neg_pooled, pooled}, 0) : pooled;
    added.text_embeds = added.text_embeds.to(options_.dtype);
    added.time_ids = c.guidance ? time_ids.repeat({2, 1}) : time_ids;
    c.added = added;
  }
  if (params.num_images > 1) {
    // [uncond, cond] -> [uncond x N, cond x N], diffusers' num_images_per_prompt order, so that
    // the two CFG halves stay the two halves of the batch.
    const int64_t n = params.num_images;
    c.prompt_embeds = c.prompt_embeds.repeat_interleave(n, 0);
    if (c.added) {
      c.added->text_embeds = c.added->text_embeds.repeat_interleave(n, 0);
      c.added->time_ids = c.added->time_ids.repeat_interleave(n, 0);
    }
  }
  return c;
}

Result<std::unique_ptr<samplers::Sampler>> Pipeline::MakeSampler(const GenerateParams& params) const {
  std::string name = params.sampler == "default" ? default_sampler_ : params.sampler;
  DISTRI_ASSIGN_OR_RETURN(auto sampler, samplers::MakeSampler(name, scheduler_config_));
  DISTRI_RETURN_IF_ERROR(sampler->SetTimesteps(params.steps));
  return sampler;
}

at::Tensor Pipeline::InitialLatents(const GenerateParams& params, const samplers::Sampler& sampler) const {
  c10::InferenceMode guard;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(params.seed);
  int64_t channels = unet_->options().in_channels;
  at::Tensor noise = at::randn({params.num_images, channels, params.height / vae_scale_, params.width / vae_scale_},
                               gen, at::kFloat);
  return (noise.to(options_.device, options_.dtype) * sampler.init_noise_sigma());
}

at::Tensor CombineGuidance(const at::Tensor& prediction, double guidance, double guidance_rescale) {
  auto halves = prediction.chunk(2, 0);
  at::Tensor out = halves[0] + guidance * (halves[1] - halves[0]);
  if (guidance_rescale > 0) {
    // std over every dimension but the batch, unbiased (torch.std's default, as diffusers).
    std::vector<int64_t> dims;
    for (int64_t d = 1; d < out.dim(); ++d) dims.push_back(d);
    const at::Tensor std_text = halves[1].std(dims, /*unbiased=*/true, /*keepdim=*/true);
    const at::Tensor std_cfg = out.std(dims, /*unbiased=*/true, /*keepdim=*/true);
    out = guidance_rescale * (out * (std_text / std_cfg)) + (1 - guidance_rescale) * out;
  }
  return out.contiguous();
}

Result<at::Tensor> Pipeline::DenoiseStep(samplers::Sampler& sampler, int step, const at::Tensor& latents,
                                         const Conditioning& cond, double guidance, double guidance_rescale,
                                         const at::Tensor& device_timesteps) {
  c10::InferenceMode guard;
  DISTRI_ASSIGN_OR_RETURN(at::Tensor pred, Guard("unet step " + std::to_string(step), [&] {
    at::Tensor input = cond.guidance ? at::cat({latents, latents}, 0) : latents;
    input = sampler.ScaleModelInput(input, step);
    if (channels_last_) input = input.contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor t = device_timesteps.defined() ? device_timesteps[step] : sampler.timesteps()[step].to(options_.device);
    at::Tensor out = unet_->forward(input, t, cond.prompt_embeds, cond.added);
    return cond.guidance ? CombineGuidance(out, guidance, guidance_rescale) : out.contiguous();
  }));
  return sampler.Step(pred, step, latents);
}

Result<RgbImage> Pipeline::DecodeLatents(const at::Tensor& latents) {
  c10::InferenceMode guard;
  return Guard("vae decode", [&] {
    at::Tensor z = vae_->UnscaleLatents(latents.to(options_.device));
    return ToRgb(vae_->Decode(z, options_.vae_decode_dtype));
  });
}

Status Pipeline::DecodeEach(const at::Tensor& latents, GenerateResult* result) {
  // One image at a time: the VAE decode's activations of a 1024 px image are ~10x its latent's
  // UNet activations, so a batch would multiply the peak memory.
  for (int64_t i = 0; i < latents.size(0); ++i) {
    DISTRI_ASSIGN_OR_RETURN(RgbImage image, DecodeLatents(latents.narrow(0, i, 1)));
    result->AddImage(std::move(image));
  }
  return Status::Ok();
}

Result<GenerateResult> Pipeline::Generate(GenerateParams params, const ProgressFn& progress) {
  DISTRI_RETURN_IF_ERROR(ValidateParams(&params, default_size_));
  if (params.height % vae_scale_ != 0 || params.width % vae_scale_ != 0) {
    return Status::InvalidArgument("height and width must be multiples of " + std::to_string(vae_scale_) +
                                   " for this model's VAE");
  }
  GenerateResult r;
  auto t0 = std::chrono::steady_clock::now();
  DISTRI_ASSIGN_OR_RETURN(Conditioning cond, EncodePrompts(params));
  r.seconds_text = Since(t0);
  DISTRI_ASSIGN_OR_RETURN(auto sampler, MakeSampler(params));
  t0 = std::chrono::steady_clock::now();
  at::Tensor latents = InitialLatents(params, *sampler);
  const int n = sampler->num_steps();
  const at::Tensor timesteps = sampler->timesteps().to(options_.device);
  StepPacer pacer(options_.device);  // one step queued ahead of the running one
  int reported = 0;                  // steps reported done through `progress`
  if (progress && !progress(0, n)) return Status::Cancelled("cancelled before the first step");
  for (int i = 0; i < n; ++i) {
    DISTRI_ASSIGN_OR_RETURN(latents, DenoiseStep(*sampler, i, latents, cond, params.guidance, params.guidance_rescale,
                                                 timesteps));
    DISTRI_ASSIGN_OR_RETURN(const int done, pacer.Queued());
    if (progress && done > reported && !progress(reported = done, n)) {
      return Status::Cancelled("cancelled at step " + std::to_string(done));
    }
  }
  DISTRI_RETURN_IF_ERROR(pacer.Finish().status());
  if (progress && n > reported && !progress(n, n)) return Status::Cancelled("cancelled at step " + std::to_string(n));
  r.latents = latents.to(at::kCPU, at::kFloat);
  r.seconds_denoise = Since(t0);
  t0 = std::chrono::steady_clock::now();
  DISTRI_RETURN_IF_ERROR(DecodeEach(latents, &r));
  r.seconds_decode = Since(t0);
  return r;
}

RgbImage ToRgb(const at::Tensor& image) {
  at::Tensor x = (image.to(at::kCPU, at::kFloat)[0] / 2 + 0.5).clamp(0, 1);
  at::Tensor u8 = (x * 255).round().to(at::kByte).permute({1, 2, 0}).contiguous();
  RgbImage out;
  out.height = static_cast<int>(u8.size(0));
  out.width = static_cast<int>(u8.size(1));
  out.pixels.assign(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel());
  return out;
}

}  // namespace distri::pipeline
