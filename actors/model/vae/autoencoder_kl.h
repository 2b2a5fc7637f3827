// AutoencoderKL (diffusers autoencoders/autoencoder_kl.py), weight-compatible with diffusers
// 0.42: encoder.*, decoder.*, quant_conv, post_quant_conv.
//
// Latent scaling — who divides: Encode/Decode work on the VAE's own latent space z. The UNet's
// latents are (z - shift_factor) * scaling_factor. The caller converts with ScaleLatents /
// UnscaleLatents; the pipeline decodes with
//     vae->Decode(vae->UnscaleLatents(latents))          // = latents / scaling_factor (+ shift)
// and prepares img2img latents with vae->ScaleLatents(vae->Encode(images).Sample(gen)).
//
// Precision policy of Decode (SDXL's VAE overflows in fp16 and gives NaNs/black images; its
// config says force_upcast): the compute dtype is
//   1. compute_dtype, when the caller passes one (fp32, bf16 or fp16);
//   2. else fp32, when the config has force_upcast and the weights are fp16 (what diffusers'
//      pipelines do with upcast_vae());
//   3. else the weights' dtype.
// When it differs from the weights' dtype, Decode runs on a copy of the decoder's weights in
// that dtype, built on first use and kept (SDXL's decoder in fp32: ~200 MB;
// ReleaseComputeCopies() frees it). The weights themselves are never converted in place, so a fp16 model stays exact.
// The result is in the compute dtype. Encode runs in the weights' dtype.
//
// Threading: forward/Encode/Decode may run concurrently; building the compute copy is guarded.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/Generator.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "actors/model/blocks/layers.h"
#include "actors/model/vae/encoder_decoder.h"
#include "actors/model/vae/vae_options.h"
#include "runtime/common/status.h"

namespace distri::model {

// The encoder's posterior N(mean, exp(logvar)) per latent element.
struct DiagonalGaussian {
  at::Tensor mean;    // [B, latent_channels, h, w]
  at::Tensor logvar;  // same shape, clamped to [-30, 20] as diffusers does

  // moments: [B, 2 * latent_channels, h, w] = cat(mean, logvar).
  static DiagonalGaussian FromMoments(const at::Tensor& moments);
  at::Tensor Std() const;
  // mean + std * eps, eps ~ N(0, 1) drawn with `generator` on the generator's device (then
  // moved, like diffusers' randn_tensor), or with the default generator of mean's device.
  at::Tensor Sample(std::optional<at::Generator> generator = std::nullopt) const;
  at::Tensor Mode() const { return mean; }
};

// The dtype Decode computes in, from the policy above.
at::ScalarType ResolveDecodeDtype(at::ScalarType weights_dtype, bool force_upcast,
                                  std::optional<at::ScalarType> compute_dtype);

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  // `options` must pass Validate(); parameters are uninitialised until loaded (LoadVae).
  explicit AutoencoderKLImpl(AutoencoderKLOptions options);

  // images: [B, in_channels, H, W] in [-1, 1], model dtype and device.
  DiagonalGaussian Encode(const at::Tensor& images) const;
  // z: [B, latent_channels, h, w] (already unscaled: see UnscaleLatents), any float dtype.
  // Returns images [B, out_channels, h * f, w * f], roughly in [-1, 1], in the compute dtype.
  at::Tensor Decode(const at::Tensor& z, std::optional<at::ScalarType> compute_dtype = std::nullopt) const;
  // Decode(Encode(images).mean) in the weights' dtype (diffusers' forward without sampling).
  at::Tensor forward(const at::Tensor& images) const;

  // UNet latents -> VAE latents: latents / scaling_factor + shift_factor.
  at::Tensor UnscaleLatents(const at::Tensor& latents) const;
  // VAE latents -> UNet latents: (z - shift_factor) * scaling_factor.
  at::Tensor ScaleLatents(const at::Tensor& z) const;

  // The module whose decoder runs Decode(z, compute_dtype): this one, or its compute copy in
  // another dtype (the precision policy above). Patch-parallel decoding attaches its layer
  // context there before calling Decode.
  torch::nn::Module& DecodeModule(std::optional<at::ScalarType> compute_dtype = std::nullopt) const;

  const AutoencoderKLOptions& options() const { return options_; }
  at::ScalarType weights_dtype() const;
  void ReleaseComputeCopies() const;

  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  Conv2d quant_conv{nullptr};       // null when use_quant_conv is false
  Conv2d post_quant_conv{nullptr};  // null when use_post_quant_conv is false

 private:
  at::Tensor DecodeHere(const at::Tensor& z) const;
  std::shared_ptr<AutoencoderKLImpl> ComputeCopy(at::ScalarType dtype) const;

  AutoencoderKLOptions options_;
  mutable std::mutex copies_mutex_;
  mutable std::map<at::ScalarType, std::shared_ptr<AutoencoderKLImpl>> copies_;
};
TORCH_MODULE(AutoencoderKL);

// Loads a diffusers VAE folder (`dir` holds config.json and
// diffusion_pytorch_model[.<variant>].safetensors). Weights converted to `dtype`, on `device`.
// Errors name the config key or the tensor (missing, unexpected, mis-shaped).
Result<AutoencoderKL> LoadVae(const std::string& dir, const std::string& variant, at::ScalarType dtype,
                              c10::Device device);

}  // namespace distri::model
