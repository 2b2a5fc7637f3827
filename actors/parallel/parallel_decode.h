// Patch-parallel VAE decode: the ranks of a gang decode one row strip of the latent each,
// exchanging halo rows, group-norm statistics and attention keys/values synchronously
// (DisplacedPatchContext in full_sync mode), so the image equals the single-device decode up to
// rounding; then every rank all-gathers the image rows. At 2048-3840 px this splits the
// decoder's time and its activation memory (the largest of the job in fp32) across the gang.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "actors/model/vae/autoencoder_kl.h"
#include "runtime/channel/channel.h"
#include "runtime/common/status.h"

namespace distri::parallel {

// Every rank calls it with the same `latents` (UNet scale, [1, C, h, w]) and its own `vae`
// (same weights). Returns the full image [1, out_channels, h * f, w * f] on every rank, in the
// decode dtype. Errors: InvalidArgument (a latent with fewer rows than ranks), the channel's
// errors (the channel is aborted on any error).
Result<at::Tensor> PatchParallelDecode(model::AutoencoderKL& vae, channel::Channel& channel, const at::Tensor& latents,
                                       std::optional<at::ScalarType> compute_dtype = std::nullopt);

}  // namespace distri::parallel
