// Built-in model architectures for `distri model init`: config files in diffusers' folder
// layout for tiny test models (sd15-tiny, sdxl-tiny) and full-size architectures (sd15, sdxl)
// used with random weights for benchmarks.
#pragma once

#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace distri::pipeline {

std::vector<std::string> PresetNames();

// Writes model_index.json and <component>/config.json (+ scheduler/scheduler_config.json) of
// `arch` under `dir` (created). Weights and tokenizer files are written by the caller.
Status WritePresetConfigs(const std::string& arch, const std::string& dir);

}  // namespace distri::pipeline
