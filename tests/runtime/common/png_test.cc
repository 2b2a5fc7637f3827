#include "runtime/common/png.h"

#include <gtest/gtest.h>

namespace distri {
namespace {

TEST(Png, RoundTripWithText) {
  RgbImage img;
  img.width = 7;
  img.height = 5;
  for (int i = 0; i < 7 * 5 * 3; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 37));
  auto png = EncodePng(img, {{"prompt", "a cat"}, {"seed", "42"}});
  ASSERT_TRUE(png.ok()) << png.status().ToString();
  EXPECT_EQ(png->substr(1, 3), "PNG");
  EXPECT_NE(png->find("a cat"), std::string::npos);
  auto back = DecodePng(*png);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->width, 7);
  EXPECT_EQ(back->height, 5);
  EXPECT_EQ(back->pixels, img.pixels);
}

TEST(Png, BadInputIsAnError) {
  RgbImage img;
  img.width = 4;
  img.height = 4;
  img.pixels.resize(10);
  EXPECT_EQ(EncodePng(img).status().message(), "EncodePng: 4x4 RGB needs 48 bytes, got 10");
  EXPECT_FALSE(DecodePng("hello").ok());
  img.pixels.assign(48, 9);
  std::string png = *EncodePng(img);
  auto truncated = DecodePng(png.substr(0, png.size() / 2));
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("DecodePng"), std::string::npos);
  std::string corrupt = png;
  for (size_t i = 40; i < corrupt.size(); i += 7) corrupt[i] ^= 0x5a;
  EXPECT_FALSE(DecodePng(corrupt).ok());
}

}  // namespace
}  // namespace distri
