// What one image job asks for: diffusers' pipeline arguments, validated in one place.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/common/status.h"

namespace distri::pipeline {

struct GenerateParams {
  std::string prompt;
  std::string negative_prompt;
  int height = 0;              // pixels; 0: the model's default (unet sample_size * 8)
  int width = 0;
  int steps = 30;              // num_inference_steps
  double guidance = 5.0;       // guidance_scale; <= 1 disables classifier-free guidance
  // guidance_rescale (0..1; 0 = off): diffusers' rescale_noise_cfg, for v-prediction models
  // that over-expose at high guidance (Lin et al. 2023, section 3.4).
  double guidance_rescale = 0.0;
  uint64_t seed = 0;
  // num_images_per_prompt: images of this prompt rendered together as one batch (1..16). The
  // noise of all of them comes from one generator seeded with `seed` ([num_images, C, h, w] in
  // one draw, as diffusers does), so image i differs from a one-image job of another seed.
  int num_images = 1;
  std::string sampler = "default";  // default (the model's scheduler), ddim, euler, dpmpp_2m
  int clip_skip = 0;           // SD 1.x/2.x: use the hidden state this many layers before the last
  // SDXL micro-conditioning (add_time_ids); 0 means "the image size", as diffusers defaults.
  int original_height = 0, original_width = 0;
  int crop_top = 0, crop_left = 0;
  int target_height = 0, target_width = 0;
};

// Checks ranges and fills defaults that depend on the model (`default_size` pixels).
// Errors name the argument: "height: must be a multiple of 8, got 1001".
Status ValidateParams(GenerateParams* p, int default_size);

}  // namespace distri::pipeline
