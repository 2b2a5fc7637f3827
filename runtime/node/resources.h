// What a node offers: which GPUs get an actor, how many CPU actors run, the hostname.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/wire/types.h"

namespace distri::node {

// The GPUs the agent starts actors on, from the --gpus text:
//   "all"   every CUDA device this process sees (none without CUDA)
//   "none"  no GPU actors
//   "0,2"   these CUDA ordinals (checked against the device count when built with CUDA)
// Errors name the bad entry: "--gpus: '3' is not a CUDA device of this machine (2 found)".
Result<std::vector<int>> SelectGpus(std::string_view spec);

// Name and memory of each selected GPU (names "cuda:<i>" and memory 0 without CUDA).
std::vector<wire::GpuInfo> DescribeGpus(const std::vector<int>& gpus);

// gethostname(), or "localhost" when it fails.
std::string LocalHostname();

// The resources a node registers with: `gpus` GPU actors plus `cpu_actors` CPU actors, the
// model named by the last component of `model_dir`. InvalidArgument when there is nothing to
// run (no GPU and no CPU actor) or cpu_actors is negative.
Result<wire::NodeResources> DescribeNode(const std::vector<int>& gpus, int cpu_actors,
                                         const std::string& model_dir, const std::string& hostname);

// The model's name as actors and nodes report it: the last path component of its folder
// ("/models/sdxl-base/" -> "sdxl-base").
std::string ModelName(const std::string& model_dir);

}  // namespace distri::node
