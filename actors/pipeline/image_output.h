// The PNG that `distri generate` writes (and the denoise actor returns): the image with the
// job's parameters as text chunks, so the same job gives the same bytes everywhere.
#pragma once

#include <string>

#include "actors/pipeline/generate_params.h"
#include "runtime/common/png.h"
#include "runtime/common/status.h"

namespace distri::pipeline {

// `model` is recorded as given (a folder or a model name).
Result<std::string> EncodeImagePng(const RgbImage& image, const GenerateParams& params, const std::string& model);

}  // namespace distri::pipeline
