#include "actors/model/vae/autoencoder_kl.h"

#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <utility>

#include "actors/model/blocks/module_loading.h"

namespace distri::model {

DiagonalGaussian DiagonalGaussian::FromMoments(const at::Tensor& moments) {
  auto halves = moments.chunk(2, 1);
  return DiagonalGaussian{halves[0], at::clamp(halves[1], -30.0, 20.0)};
}

at::Tensor DiagonalGaussian::Std() const { return at::exp(logvar * 0.5); }

at::Tensor DiagonalGaussian::Sample(std::optional<at::Generator> generator) const {
  at::Tensor noise;
  if (generator.has_value() && generator->device() != mean.device()) {
    noise = at::randn(mean.sizes(), generator, mean.options().device(generator->device())).to(mean.device());
  } else {
    noise = at::randn(mean.sizes(), generator, mean.options());
  }
  return mean + Std() * noise;
}

at::ScalarType ResolveDecodeDtype(at::ScalarType weights_dtype, bool force_upcast,
                                  std::optional<at::ScalarType> compute_dtype) {
  if (compute_dtype.has_value()) return *compute_dtype;
  if (force_upcast && weights_dtype == at::kHalf) return at::kFloat;
  return weights_dtype;
}

AutoencoderKLImpl::AutoencoderKLImpl(AutoencoderKLOptions options) : options_(std::move(options)) {
  const Status valid = options_.Validate();
  TORCH_CHECK(valid.ok(), valid.message());
  const int64_t latent = options_.latent_channels;
  encoder = register_module("encoder", Encoder(options_));
  decoder = register_module("decoder", Decoder(options_));
  if (options_.use_quant_conv) {
    quant_conv = register_module("quant_conv", Conv2d(Conv2dOptions(2 * latent, 2 * latent, 1)));
  }
  if (options_.use_post_quant_conv) {
    post_quant_conv = register_module("post_quant_conv", Conv2d(Conv2dOptions(latent, latent, 1)));
  }
}

DiagonalGaussian AutoencoderKLImpl::Encode(const at::Tensor& images) const {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == options_.in_channels, "AutoencoderKL: images must be [B, ",
              options_.in_channels, ", H, W], got ", images.sizes());
  at::Tensor moments = encoder->forward(images);
  if (quant_conv) moments = quant_conv->forward(moments);
  return DiagonalGaussian::FromMoments(moments);
}

at::Tensor AutoencoderKLImpl::DecodeHere(const at::Tensor& z) const {
  TORCH_CHECK(z.dim() == 4 && z.size(1) == options_.latent_channels, "AutoencoderKL: latents must be [B, ",
              options_.latent_channels, ", h, w], got ", z.sizes());
  return decoder->forward(post_quant_conv ? post_quant_conv->forward(z) : z);
}

at::Tensor AutoencoderKLImpl::Decode(const at::Tensor& z, std::optional<at::ScalarType> compute_dtype) const {
  const at::ScalarType weights = weights_dtype();
  const at::ScalarType dtype = ResolveDecodeDtype(weights, options_.force_upcast, compute_dtype);
  if (dtype == weights) return DecodeHere(z.to(dtype));
  return ComputeCopy(dtype)->DecodeHere(z.to(dtype));
}

torch::nn::Module& AutoencoderKLImpl::DecodeModule(std::optional<at::ScalarType> compute_dtype) const {
  const at::ScalarType weights = weights_dtype();
  const at::ScalarType dtype = ResolveDecodeDtype(weights, options_.force_upcast, compute_dtype);
  if (dtype == weights) return const_cast<AutoencoderKLImpl&>(*this);
  return *ComputeCopy(dtype);
}

at::Tensor AutoencoderKLImpl::forward(const at::Tensor& images) const {
  return DecodeHere(Encode(images).mean);
}

at::Tensor AutoencoderKLImpl::UnscaleLatents(const at::Tensor& latents) const {
  at::Tensor z = latents / options_.scaling_factor;
  if (options_.shift_factor.has_value()) z = z + *options_.shift_factor;
  return z;
}

at::Tensor AutoencoderKLImpl::ScaleLatents(const at::Tensor& z) const {
  at::Tensor centred = options_.shift_factor.has_value() ? z - *options_.shift_factor : z;
  return centred * options_.scaling_factor;
}

at::ScalarType AutoencoderKLImpl::weights_dtype() const { return decoder->conv_in->weight.scalar_type(); }

void AutoencoderKLImpl::ReleaseComputeCopies() const {
  std::lock_guard<std::mutex> lock(copies_mutex_);
  copies_.clear();
}

std::shared_ptr<AutoencoderKLImpl> AutoencoderKLImpl::ComputeCopy(at::ScalarType dtype) const {
  std::lock_guard<std::mutex> lock(copies_mutex_);
  auto it = copies_.find(dtype);
  if (it != copies_.end()) return it->second;
  // Normal (non-inference) tensors even when called under InferenceMode: the copy outlives it.
  c10::InferenceMode normal_mode(/*enabled=*/false);
  at::NoGradGuard no_grad;
  auto copy = std::make_shared<AutoencoderKLImpl>(options_);
  // Only what Decode uses; the copy's encoder keeps its untouched CPU placeholders.
  const c10::Device device = decoder->conv_in->weight.device();
  MaterializeParameters(*copy->decoder, dtype, device);
  if (copy->post_quant_conv) MaterializeParameters(*copy->post_quant_conv, dtype, device);
  auto copy_from = [](torch::nn::Module& dst, const torch::nn::Module& src) {
    auto src_params = src.named_parameters();
    for (auto& item : dst.named_parameters()) item.value().copy_(src_params[item.key()]);
  };
  copy_from(*copy->decoder, *decoder);
  if (copy->post_quant_conv) copy_from(*copy->post_quant_conv, *post_quant_conv);
  copies_.emplace(dtype, copy);
  return copy;
}

Result<AutoencoderKL> LoadVae(const std::string& dir, const std::string& variant, at::ScalarType dtype,
                              c10::Device device) {
  return LoadDiffusersModel<AutoencoderKL, AutoencoderKLOptions>(dir, variant, dtype, device, "VAE");
}

}  // namespace distri::model
