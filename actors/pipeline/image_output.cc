#include "actors/pipeline/image_output.h"

namespace distri::pipeline {

Result<std::string> EncodeImagePng(const RgbImage& image, const GenerateParams& p, const std::string& model) {
  return EncodePng(image, {{"prompt", p.prompt},
                           {"negative_prompt", p.negative_prompt},
                           {"seed", std::to_string(p.seed)},
                           {"steps", std::to_string(p.steps)},
                           {"guidance", std::to_string(p.guidance)},
                           {"sampler", p.sampler},
                           {"model", model},
                           {"software", "distri " DISTRI_VERSION_STRING}});
}

}  // namespace distri::pipeline
