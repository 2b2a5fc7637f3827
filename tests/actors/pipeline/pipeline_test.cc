#include "actors/pipeline/pipeline.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "actors/pipeline/generate_params.h"
#include "actors/pipeline/model_init.h"

namespace distri::pipeline {
namespace {

TEST(GenerateParams, ValidatesAndFillsDefaults) {
  GenerateParams p;
  ASSERT_TRUE(ValidateParams(&p, 1024).ok());
  EXPECT_EQ(p.height, 1024);
  EXPECT_EQ(p.original_width, 1024);
  p.height = 1001;
  EXPECT_EQ(ValidateParams(&p, 1024).message(), "height: must be a multiple of 8, got 1001");
  p.height = 512;
  p.steps = 0;
  EXPECT_EQ(ValidateParams(&p, 1024).message(), "steps: must be between 1 and 1000, got 0");
  p.steps = 10;
  p.sampler = "plms";
  EXPECT_NE(ValidateParams(&p, 1024).message().find("sampler: expected default, ddim, euler or dpmpp_2m"),
            std::string::npos);
  p.sampler = "euler";
  p.num_images = 0;
  EXPECT_EQ(ValidateParams(&p, 1024).message(), "num_images: must be between 1 and 16, got 0");
  p.num_images = 17;
  EXPECT_FALSE(ValidateParams(&p, 1024).ok());
  p.num_images = 16;
  EXPECT_TRUE(ValidateParams(&p, 1024).ok());
  p.guidance_rescale = 1.5;
  EXPECT_EQ(ValidateParams(&p, 1024).message(), "guidance_rescale: must be a number between 0 and 1");
  p.guidance_rescale = 0.7;
  EXPECT_TRUE(ValidateParams(&p, 1024).ok());
  p.guidance = std::nan("");
  EXPECT_FALSE(ValidateParams(&p, 1024).ok());
}

class TinyModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = ::testing::TempDir() + "/distri_pipeline_test_" + std::to_string(::getpid());
    ModelInitOptions o;
    o.arch = "sdxl-tiny";
    Status s = InitRandomModel(dir_, o);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  static std::string dir_;
};
std::string TinyModel::dir_;

TEST_F(TinyModel, SameSeedSameImageOtherSeedOtherImage) {
  auto pipe = Pipeline::Load(dir_, LoadOptions{});
  ASSERT_TRUE(pipe.ok()) << pipe.status().ToString();
  EXPECT_TRUE((*pipe)->is_xl());
  GenerateParams p;
  p.prompt = "a tiny test";
  p.height = 64;
  p.width = 48;
  p.steps = 3;
  p.seed = 3;
  auto a = (*pipe)->Generate(p);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->image.width, 48);
  EXPECT_EQ(a->image.height, 64);
  auto b = (*pipe)->Generate(p);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(a->latents.equal(b->latents));
  EXPECT_EQ(a->image.pixels, b->image.pixels);
  p.seed = 4;
  auto c = (*pipe)->Generate(p);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(a->latents.equal(c->latents));
  // A random model still must not produce a constant image.
  at::Tensor px = at::from_blob(a->image.pixels.data(), {static_cast<int64_t>(a->image.pixels.size())}, at::kByte);
  EXPECT_GT(px.to(at::kFloat).std().item<float>(), 1.0f);
}

TEST_F(TinyModel, ProgressAndCancel) {
  auto pipe = Pipeline::Load(dir_, LoadOptions{});
  ASSERT_TRUE(pipe.ok());
  GenerateParams p;
  p.height = p.width = 32;
  p.steps = 5;
  std::vector<int> seen;
  auto r = (*pipe)->Generate(p, [&](int i, int n) {
    EXPECT_EQ(n, 5);
    seen.push_back(i);
    return i < 2;
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
}

TEST_F(TinyModel, BadInputsAreErrors) {
  auto missing = Pipeline::Load(dir_ + "/nope", LoadOptions{});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto pipe = Pipeline::Load(dir_, LoadOptions{});
  ASSERT_TRUE(pipe.ok());
  GenerateParams p;
  p.height = 36;  // multiple of 4 but not of 8
  EXPECT_EQ((*pipe)->Generate(p).status().code(), StatusCode::kInvalidArgument);
  p.height = 32;
  p.prompt = "bad \xff\xfe utf8";
  auto r = (*pipe)->Generate(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
}

}  // namespace
}  // namespace distri::pipeline
