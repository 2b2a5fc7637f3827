#include "actors/model/blocks/module_loading.h"

#include <c10/util/Exception.h>

#include <filesystem>
#include <optional>

#include "actors/model/safetensors.h"

namespace distri::model {

void MaterializeParameters(torch::nn::Module& module, at::ScalarType dtype, c10::Device device) {
  auto rehome = [&](at::Tensor& t) {
    auto options = t.options().device(device);
    if (t.is_floating_point()) options = options.dtype(dtype);
    t.set_data(at::empty(t.sizes(), options));
  };
  for (auto& p : module.parameters(/*recurse=*/true)) rehome(p);
  for (auto& b : module.buffers(/*recurse=*/true)) rehome(b);
}

Status LoadModuleWeights(torch::nn::Module& module, const std::string& dir, const std::string& basename,
                         const std::string& variant, at::ScalarType dtype, c10::Device device,
                         const std::string& component) {
  // No dtype here: LoadStateDict converts tensor by tensor into the parameters.
  DISTRI_ASSIGN_OR_RETURN(TensorMap weights, LoadComponentWeights(dir, basename, variant, std::nullopt));
  try {
    MaterializeParameters(module, dtype, device);
    DISTRI_RETURN_IF_ERROR(LoadStateDict(module, weights, component));
    module.eval();
  } catch (const c10::Error& e) {
    return Status::Internal(component + ": loading weights from " + dir + " failed: " + e.what_without_backtrace());
  }
  return Status::Ok();
}

void SetConvWeightFormat(torch::nn::Module& module, at::MemoryFormat format) {
  at::NoGradGuard no_grad;
  for (auto& p : module.parameters(/*recurse=*/true)) {
    if (p.dim() == 4) p.set_data(p.contiguous(format));
  }
}

std::string ComponentName(const std::string& dir) {
  std::filesystem::path path(dir);
  if (!path.has_filename()) path = path.parent_path();  // trailing slash
  std::string name = path.filename().string();
  return name.empty() ? dir : name;
}

}  // namespace distri::model
