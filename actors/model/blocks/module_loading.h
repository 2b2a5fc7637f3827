// Loading a diffusers component's weights into one of our modules.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Device.h>
#include <c10/util/Exception.h>
#include <torch/nn/module.h>

#include <string>

#include "actors/model/blocks/attention.h"
#include "actors/model/json_config.h"
#include "runtime/common/status.h"

namespace distri::model {

// Replaces every parameter and buffer of `module` by an uninitialised tensor of the same
// shape on `device` with `dtype` (floating-point tensors only change dtype). The layers
// (layers.h) are built with untouched CPU placeholders; this gives them their real home
// before the weights are copied in, without ever materialising them on the CPU in fp32.
void MaterializeParameters(torch::nn::Module& module, at::ScalarType dtype, c10::Device device);

// Loads `<dir>/<basename>[.<variant>].safetensors` (or its sharded form) into `module` by
// state-dict name: MaterializeParameters, then LoadStateDict (safetensors.h), which fails on a
// missing, unexpected or mis-shaped tensor and names it. `component` ("unet", "vae") prefixes
// error messages. Weights are converted per tensor, so the CPU never holds a converted copy of
// the whole model. LibTorch exceptions become a Status.
Status LoadModuleWeights(torch::nn::Module& module, const std::string& dir, const std::string& basename,
                         const std::string& variant, at::ScalarType dtype, c10::Device device,
                         const std::string& component);

// Re-lays every 4-d parameter (the convolution weights) out in `format`, values unchanged.
// For channels_last inputs (NHWC, the fast layout for cuDNN and for the token permutes of the
// attention blocks), channels_last weights spare cuDNN a layout conversion on every call.
void SetConvWeightFormat(torch::nn::Module& module, at::MemoryFormat format);

// "path/to/unet/" -> "unet" (for error messages).
std::string ComponentName(const std::string& dir);

// A diffusers model folder (unet/, vae/): Options::FromConfig of DIR/config.json, the Model
// built from it, diffusion_pytorch_model[.variant].safetensors loaded into it
// (LoadModuleWeights) and self-attention's q/k/v fused into one GEMM. `what` ("UNet", "VAE")
// names the model when LibTorch throws while building it.
template <typename Model, typename Options>
Result<Model> LoadDiffusersModel(const std::string& dir, const std::string& variant, at::ScalarType dtype,
                                 c10::Device device, const char* what) {
  DISTRI_ASSIGN_OR_RETURN(JsonConfig config, JsonConfig::Load(dir + "/config.json"));
  DISTRI_ASSIGN_OR_RETURN(Options options, Options::FromConfig(config));
  const std::string component = ComponentName(dir);
  try {
    Model model(options);
    DISTRI_RETURN_IF_ERROR(LoadModuleWeights(*model, dir, "diffusion_pytorch_model", variant, dtype, device, component));
    FuseAttentionProjections(*model);  // one GEMM for q, k and v
    return model;
  } catch (const c10::Error& e) {
    return Status::Internal(component + ": building the " + what + " failed: " + e.what_without_backtrace());
  }
}

}  // namespace distri::model
