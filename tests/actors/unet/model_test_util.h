// Helpers shared by the UNet and VAE tests: error measures and random weights on disk.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "actors/model/safetensors.h"

namespace distri::model::testing {

// max |actual - expected| / max |expected|: one number per tensor, scale-free.
// <dir>/reference.safetensors of a parity fixture, opened once per directory (null on error,
// after a test failure naming it).
inline std::shared_ptr<SafetensorsFile> ParityReferenceFile(const std::string& dir) {
  static std::map<std::string, std::shared_ptr<SafetensorsFile>> files;
  auto& file = files[dir];
  if (!file) {
    auto f = SafetensorsFile::Open(dir + "/reference.safetensors");
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (f.ok()) file = *f;
  }
  return file;
}

// One reference tensor of that file (undefined, after a test failure, when missing).
inline at::Tensor ParityReference(const std::string& dir, const std::string& name) {
  auto file = ParityReferenceFile(dir);
  if (!file) return at::Tensor();
  auto t = file->Get(name);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : at::Tensor();
}

inline double RelativeError(const at::Tensor& actual, const at::Tensor& expected) {
  at::Tensor a = actual.detach().to(at::kDouble).cpu(), e = expected.detach().to(at::kDouble).cpu();
  const double scale = std::max(e.abs().max().item<double>(), 1e-30);
  return (a - e).abs().max().item<double>() / scale;
}

// Seeded random values in every parameter (norm scales near 1), as parity_common.randomize_.
inline void Randomize(torch::nn::Module& module, uint64_t seed) {
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& item : module.named_parameters()) {
    at::Tensor& p = item.value();
    at::Tensor v = at::randn(p.sizes(), gen, p.options().device(at::kCPU).dtype(at::kFloat)) * 0.2;
    if (p.dim() == 1 && item.key().size() > 7 && item.key().ends_with(".weight")) v = v + 1.0;
    p.copy_(v);
  }
}

inline TensorMap StateDict(const torch::nn::Module& module) {
  TensorMap weights;
  for (const auto& item : module.named_parameters()) weights[item.key()] = item.value().detach().clone();
  return weights;
}

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            (tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  void Write(const std::string& name, const std::string& text) const { std::ofstream(path_ / name) << text; }

 private:
  std::filesystem::path path_;
};

}  // namespace distri::model::testing
