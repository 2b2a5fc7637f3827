// capi_png_to_rgb IN.png OUT.rgb: decodes a PNG into raw 8-bit RGB rows (the layout of
// DISTRI_OUTPUT_RGB8), so the end-to-end tests of every language compare plain bytes.
#include <cstdio>

#include "runtime/common/png.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: capi_png_to_rgb IN.png OUT.rgb\n");
    return 2;
  }
  auto bytes = distri::ReadFile(argv[1]);
  if (!bytes.ok()) {
    std::fprintf(stderr, "%s\n", bytes.status().ToString().c_str());
    return 1;
  }
  auto image = distri::DecodePng(*bytes);
  if (!image.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[1], image.status().ToString().c_str());
    return 1;
  }
  std::string raw(image->pixels.begin(), image->pixels.end());
  if (auto s = distri::WriteFile(argv[2], raw); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("%s: %dx%d -> %s (%zu bytes)\n", argv[1], image->width, image->height, argv[2], raw.size());
  return 0;
}
