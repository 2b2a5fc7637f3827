#include "actors/pipeline/generate_params.h"

#include <cmath>

namespace distri::pipeline {

Status ValidateParams(GenerateParams* p, int default_size) {
  if (p->height == 0) p->height = default_size;
  if (p->width == 0) p->width = default_size;
  // 16384 px: far beyond what any model was trained for, and the largest latent we plan memory for.
  for (auto [name, v] : {std::pair{"height", p->height}, std::pair{"width", p->width}}) {
    if (v < 8 || v > 16384) {
      return Status::InvalidArgument(std::string(name) + ": must be between 8 and 16384 pixels, got " + std::to_string(v));
    }
    if (v % 8 != 0) {
      return Status::InvalidArgument(std::string(name) + ": must be a multiple of 8, got " + std::to_string(v));
    }
  }
  if (p->steps < 1 || p->steps > 1000) {
    return Status::InvalidArgument("steps: must be between 1 and 1000, got " + std::to_string(p->steps));
  }
  if (!std::isfinite(p->guidance) || p->guidance < 0 || p->guidance > 100) {
    return Status::InvalidArgument("guidance: must be a number between 0 and 100");
  }
  if (p->sampler != "default" && p->sampler != "ddim" && p->sampler != "euler" && p->sampler != "dpmpp_2m") {
    return Status::InvalidArgument("sampler: expected default, ddim, euler or dpmpp_2m, got '" + p->sampler + "'");
  }
  if (!std::isfinite(p->guidance_rescale) || p->guidance_rescale < 0 || p->guidance_rescale > 1) {
    return Status::InvalidArgument("guidance_rescale: must be a number between 0 and 1");
  }
  if (p->num_images < 1 || p->num_images > 16) {
    return Status::InvalidArgument("num_images: must be between 1 and 16, got " + std::to_string(p->num_images));
  }
  if (p->clip_skip < 0 || p->clip_skip > 10) {
    return Status::InvalidArgument("clip_skip: must be between 0 and 10, got " + std::to_string(p->clip_skip));
  }
  if (p->prompt.size() > 65536 || p->negative_prompt.size() > 65536) {
    return Status::InvalidArgument("prompt: longer than 65536 bytes");
  }
  if (p->original_height == 0) p->original_height = p->height;
  if (p->original_width == 0) p->original_width = p->width;
  if (p->target_height == 0) p->target_height = p->height;
  if (p->target_width == 0) p->target_width = p->width;
  for (int v : {p->original_height, p->original_width, p->target_height, p->target_width, p->crop_top, p->crop_left}) {
    if (v < 0 || v > 65536) return Status::InvalidArgument("SDXL size conditioning: values must be in [0, 65536]");
  }
  return Status::Ok();
}

}  // namespace distri::pipeline
