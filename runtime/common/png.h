// PNG encoding/decoding of 8-bit RGB images (libpng). No LibTorch: the head, the C API and
// the actors share it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace distri {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // row-major, 3 bytes per pixel, stride = 3 * width
};

// Encodes `image` as PNG. Text chunks (key -> value, e.g. "prompt", "seed") are stored as tEXt
// so that tools show how the image was made. Fails on sizes that don't match the pixel count.
Result<std::string> EncodePng(const RgbImage& image,
                              const std::vector<std::pair<std::string, std::string>>& text = {});
// Decodes an 8-bit RGB or RGBA PNG (alpha dropped). Corrupt input is an error, never a crash.
Result<RgbImage> DecodePng(const std::string& bytes);
Status WriteFile(const std::string& path, const std::string& bytes);
Result<std::string> ReadFile(const std::string& path);

}  // namespace distri
