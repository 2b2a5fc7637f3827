// safetensors files and diffusers weight folders.
//
// Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
// N bytes of JSON {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ...,
// "__metadata__": {...}}, then the data. The header is untrusted input: every size and offset
// is bounds-checked and any mismatch is an error naming the file and the tensor.
//
// Files are memory-mapped; tensors returned by Get() view the mapping (no copy) and keep it
// alive. They must be treated as read-only.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"

namespace distri::model {

using TensorMap = std::map<std::string, at::Tensor>;

class SafetensorsFile {
 public:
  struct Entry {
    std::string name;
    at::ScalarType dtype;
    std::vector<int64_t> shape;
    size_t offset = 0;  // from the start of the data section
    size_t nbytes = 0;
  };

  static Result<std::shared_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<Entry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool Has(std::string_view name) const;
  // CPU tensor over the mapped bytes, in the file's dtype.
  Result<at::Tensor> Get(std::string_view name) const;
  // All tensors, optionally converted to `dtype` (a copy when the dtype differs).
  Result<TensorMap> GetAll(std::optional<at::ScalarType> dtype = std::nullopt) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  size_t data_start_ = 0;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::weak_ptr<SafetensorsFile> self_;
};

// Writes tensors (any device; contiguous copies are made) as one safetensors file.
Status SaveSafetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Loads the weights of one diffusers/transformers component folder, e.g. `<model>/unet` with
// basename "diffusion_pytorch_model" or `<model>/text_encoder` with basename "model".
// Looks for, in order: <basename>[.<variant>].safetensors, then the sharded form
// <basename>[.<variant>].safetensors.index.json (its "weight_map" names the shard files).
// With variant "fp16" and no fp16 file, falls back to the plain file. `dtype` converts on load.
Result<TensorMap> LoadComponentWeights(const std::string& dir, const std::string& basename,
                                       const std::string& variant = "",
                                       std::optional<at::ScalarType> dtype = std::nullopt);

// Copies `weights` into the parameters and buffers of `module`, matched by their full names
// (diffusers' state-dict names), converting to each parameter's dtype/device. Errors name the
// component and the tensor: missing, unexpected (unless allow_unexpected), or mis-shaped
// ("unet: down_blocks.0.resnets.0.conv1.weight: expected shape [320, 320, 3, 3], file has [..]").
Status LoadStateDict(torch::nn::Module& module, const TensorMap& weights,
                     const std::string& component, bool allow_unexpected = false);

}  // namespace distri::model
