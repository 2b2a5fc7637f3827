// The text-to-image pipeline: prompt -> embeddings -> denoising with classifier-free
// guidance -> VAE decode -> RGB image, for SD 1.x/2.x (StableDiffusionPipeline) and SDXL
// (StableDiffusionXLPipeline), computing what diffusers 0.42 computes.
//
//   DISTRI_ASSIGN_OR_RETURN(auto pipe, Pipeline::Load("/models/sdxl", {.dtype = at::kHalf, .device = dev}));
//   DISTRI_ASSIGN_OR_RETURN(GenerateResult r, pipe->Generate(params, progress));
//
// The steps are public so that the patch-parallel runner (actors/parallel) can reuse them:
// EncodePrompts, InitialLatents, and DecodeLatents are rank-independent; only the UNet calls
// inside Denoise change under patch parallelism.
//
// Semantics fixed here (they match diffusers' pipelines):
// - An empty negative prompt means "none" (diffusers' None): SD 1.x/2.x encode "", SDXL uses
//   zero embeddings when model_index.json sets force_zeros_for_empty_prompt (the default).
// - Classifier-free guidance runs when guidance > 1; the batch is [unconditional, conditional].
// - Initial noise: torch.randn of shape [1, 4, H/f, W/f] (f = the VAE's scale, 8) from a CPU generator seeded with
//   `seed`, in fp32, then moved to the device and dtype: the same on every device and rank,
//   and equal to diffusers' latents with generator=torch.Generator().manual_seed(seed).
// Threading: one Generate at a time per Pipeline (the sampler keeps per-job state).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/model/clip_text_model.h"
#include "actors/model/clip_tokenizer.h"
#include "actors/model/unet/unet_2d_condition.h"
#include "actors/model/vae/autoencoder_kl.h"
#include "actors/pipeline/generate_params.h"
#include "actors/samplers/sampler.h"
#include "runtime/common/png.h"

namespace distri::pipeline {

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;
  c10::Device device = c10::Device(c10::kCPU);
  std::string variant;  // "" or e.g. "fp16": which weight files to prefer
  // VAE decode dtype; nullopt: the VAE's policy (fp32 when force_upcast and weights are fp16).
  std::optional<at::ScalarType> vae_decode_dtype;
};

// Returns false to cancel the job (Generate then returns Cancelled).
using ProgressFn = std::function<bool(int step, int total)>;

struct Conditioning {
  at::Tensor prompt_embeds;  // [B, 77, cross_attention_dim]; B = 2 with guidance ([uncond, cond])
  std::optional<model::UNetAddedConditions> added;  // SDXL only
  bool guidance = false;
};

struct GenerateResult {
  at::Tensor latents;  // final latents [num_images, 4, h, w] (UNet scale), fp32 CPU
  RgbImage image;      // the first image
  std::vector<RgbImage> extra_images;  // images 2..num_images (GenerateParams.num_images > 1)
  double seconds_text = 0, seconds_denoise = 0, seconds_decode = 0;
  // Between the text encoders and the loop (sampler, initial latents, runner and conditioning
  // set-up, waiting for the device), and after it (latents to the host); for timing breakdowns.
  double seconds_prepare = 0, seconds_finish = 0;

  // The next decoded image: `image` while it is empty, else appended to extra_images.
  void AddImage(RgbImage next) {
    if (image.pixels.empty()) {
      image = std::move(next);
    } else {
      extra_images.push_back(std::move(next));
    }
  }
};

class Pipeline {
 public:
  static Result<std::unique_ptr<Pipeline>> Load(const std::string& model_dir, const LoadOptions& options);

  bool is_xl() const { return is_xl_; }
  // unet sample_size * vae scale factor (e.g. 1024 for SDXL, 512 for SD 1.5).
  int default_size() const { return default_size_; }
  const LoadOptions& options() const { return options_; }
  // Pixels per latent row/column (8 for SD and SDXL).
  int vae_scale() const { return vae_scale_; }
  // Whether the UNet runs channels_last (CUDA): its inputs should be in that layout.
  bool channels_last() const { return channels_last_; }
  model::UNet2DConditionModel& unet() { return unet_; }
  model::AutoencoderKL& vae() { return vae_; }

  // `params` must have passed ValidateParams.
  Result<Conditioning> EncodePrompts(const GenerateParams& params);
  // Seeded noise scaled by the sampler's init_noise_sigma, on the device in the model dtype.
  at::Tensor InitialLatents(const GenerateParams& params, const samplers::Sampler& sampler) const;
  Result<std::unique_ptr<samplers::Sampler>> MakeSampler(const GenerateParams& params) const;
  // One guided UNet evaluation (both CFG halves in one batch, CombineGuidance) and sampler update.
  // `device_timesteps`: the sampler's timesteps already on the device (a loop copies them once:
  // a per-step copy from host memory blocks the host until the device is idle).
  Result<at::Tensor> DenoiseStep(samplers::Sampler& sampler, int step, const at::Tensor& latents,
                                 const Conditioning& cond, double guidance, double guidance_rescale = 0,
                                 const at::Tensor& device_timesteps = {});
  // The first image of `latents` ([n, 4, h, w]) decoded to 8-bit RGB.
  Result<RgbImage> DecodeLatents(const at::Tensor& latents);
  // Every image of `latents`, one after the other: the first into result->image, the others
  // appended to result->extra_images.
  Status DecodeEach(const at::Tensor& latents, GenerateResult* result);
  // Validates params (filling defaults) and runs everything.
  Result<GenerateResult> Generate(GenerateParams params, const ProgressFn& progress = nullptr);

 private:
  Pipeline() = default;
  Result<at::Tensor> EncodeOne(size_t encoder, const std::string& prompt, int clip_skip, at::Tensor* pooled);

  LoadOptions options_;
  bool is_xl_ = false;
  bool force_zeros_for_empty_prompt_ = true;
  int default_size_ = 512;
  int vae_scale_ = 8;           // 2^(VAE levels - 1): pixels per latent
  bool channels_last_ = false;  // the UNet's layout on this device
  std::vector<model::ClipTokenizer> tokenizers_;
  std::vector<model::ClipTextModel> text_encoders_;
  model::UNet2DConditionModel unet_{nullptr};
  model::AutoencoderKL vae_{nullptr};
  samplers::SchedulerConfig scheduler_config_;
  std::string default_sampler_ = "ddim";
};

// Converts decoded images [1, 3, H, W] in [-1, 1] to 8-bit RGB as diffusers' postprocess does:
// (x / 2 + 0.5).clamp(0, 1) * 255, rounded.
// Classifier-free guidance of a [uncond x N, cond x N] UNet prediction: uncond + guidance *
// (cond - uncond); with guidance_rescale > 0 then diffusers' rescale_noise_cfg: the result,
// scaled to the per-image standard deviation of the conditional prediction, mixed with itself
// as rescale * scaled + (1 - rescale) * result. Contiguous [N, C, h, w] out.
at::Tensor CombineGuidance(const at::Tensor& prediction, double guidance, double guidance_rescale);

RgbImage ToRgb(const at::Tensor& image);

}  // namespace distri::pipeline
