// `distri model init`: writes a complete random-weight model folder in diffusers' layout
// (model_index.json, configs, safetensors weights, tokenizer files) with no Python needed.
// Used for tests and the demo (tiny presets) and for benchmarks (full-size architectures:
// speed does not depend on weight values).
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "runtime/common/status.h"

namespace distri::pipeline {

struct ModelInitOptions {
  std::string arch = "sdxl-tiny";  // see PresetNames()
  uint64_t seed = 0;
  at::ScalarType dtype = at::kFloat;  // weights dtype in the files
  bool fp16_variant_name = false;     // name the files *.fp16.safetensors (diffusers' variant)
};

Status InitRandomModel(const std::string& out_dir, const ModelInitOptions& options);

}  // namespace distri::pipeline
