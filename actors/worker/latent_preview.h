// Latent previews: a small RGB picture of a latent made without the VAE, for the progress of
// a running job (JobSpec.preview_every, TaskProgress.preview).
//
// Each latent pixel's channels are mapped to RGB by a fixed linear map (a 4x3 matrix and a
// bias) and the result, taken as [-1, 1], is scaled to [0, 255] and clamped. The factors are
// the widely circulated "latent to RGB" approximation for the SD 1.x/2.x VAE and the SDXL VAE
// (fitted by regressing decoded pixels on latents; colours and layout are roughly right,
// detail is not). The picture has the latent's resolution: image / 8 (1024 px -> 128 px).
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "runtime/common/png.h"
#include "runtime/common/status.h"

namespace distri::worker {

// Which approximation applies: the SDXL VAE's latent space differs from SD 1.x/2.x's.
enum class LatentFamily { kSd, kSdxl };

// [H, W, 3] uint8 on the latents' device: the first image of `latents` ([B, 4, H, W], any
// floating dtype, the loop's scaled latents). InvalidArgument unless 4 channels.
Result<at::Tensor> LatentPreviewRgb(const at::Tensor& latents, LatentFamily family);

// LatentPreviewRgb copied to the host (one device->host copy of H * W * 3 bytes, which waits
// for the latents' stream) and encoded as PNG.
Result<std::string> LatentPreviewPng(const at::Tensor& latents, LatentFamily family);

}  // namespace distri::worker
