#include "actors/worker/latent_preview.h"

#include <cstring>
#include <vector>

namespace distri::worker {
namespace {

// Approximation factors (see the header): rgb[k] = sum_c latent[c] * kMatrix[c][k] + kBias[k].
struct LatentToRgb {
  float matrix[4][3];
  float bias[3];
};

constexpr LatentToRgb kSdFactors = {{{0.3512f, 0.2297f, 0.3227f},
                                     {0.3250f, 0.4974f, 0.2350f},
                                     {-0.2829f, 0.1762f, 0.2721f},
                                     {-0.2120f, -0.2616f, -0.7177f}},
                                    {0.0f, 0.0f, 0.0f}};

constexpr LatentToRgb kSdxlFactors = {{{0.3651f, 0.4232f, 0.4341f},
                                       {-0.2533f, -0.0042f, 0.1068f},
                                       {0.1076f, 0.1111f, -0.0362f},
                                       {-0.3165f, -0.2492f, -0.2188f}},
                                      {0.1084f, -0.0175f, -0.0011f}};

}  // namespace

Result<at::Tensor> LatentPreviewRgb(const at::Tensor& latents, LatentFamily family) {
  if (latents.dim() != 4 || latents.size(0) < 1 || latents.size(1) != 4) {
    return Status::InvalidArgument("latent preview: expected latents [B, 4, H, W], found " +
                                   std::to_string(latents.dim()) + " dims" +
                                   (latents.dim() >= 2 ? " with " + std::to_string(latents.size(1)) + " channels" : ""));
  }
  const LatentToRgb& f = family == LatentFamily::kSdxl ? kSdxlFactors : kSdFactors;
  const at::Tensor x = latents[0].to(at::kFloat);  // [4, H, W]
  // Scalar weights keep the whole map on the device (no host->device copy of the matrix).
  std::vector<at::Tensor> planes;
  for (int k = 0; k < 3; ++k) {
    at::Tensor p = x[0] * f.matrix[0][k];
    for (int c = 1; c < 4; ++c) p = p + x[c] * f.matrix[c][k];
    planes.push_back(p + f.bias[k]);
  }
  // [-1, 1] -> [0, 255]
  return ((at::stack(planes, -1) + 1.0f) * 127.5f).clamp(0.0, 255.0).round().to(at::kByte).contiguous();
}

Result<std::string> LatentPreviewPng(const at::Tensor& latents, LatentFamily family) {
  DISTRI_ASSIGN_OR_RETURN(at::Tensor rgb, LatentPreviewRgb(latents, family));
  const at::Tensor host = rgb.to(at::kCPU);  // the one device->host copy (syncs the stream)
  RgbImage image;
  image.height = static_cast<int>(host.size(0));
  image.width = static_cast<int>(host.size(1));
  image.pixels.resize(static_cast<size_t>(host.numel()));
  std::memcpy(image.pixels.data(), host.data_ptr<uint8_t>(), image.pixels.size());
  return EncodePng(image);
}

}  // namespace distri::worker
