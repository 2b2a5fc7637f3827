// Whole-pipeline parity against diffusers (tests/parity/ref_pipeline.py): the final latent of
// each case within 1e-4 relative, and the decoded 8-bit images equal up to rounding (cases with
// num_images > 1: diffusers' num_images_per_prompt).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "actors/model/safetensors.h"
#include "actors/pipeline/pipeline.h"

namespace distri::pipeline {
namespace {

const std::string kDir = DISTRI_PARITY_DIR;

TEST(PipelineParity, FinalLatentAndImageMatchDiffusers) {
  std::ifstream in(kDir + "/cases.json");
  ASSERT_TRUE(in) << "missing fixture " << kDir << "/cases.json";
  nlohmann::json cases = nlohmann::json::parse(in);
  auto ref = model::SafetensorsFile::Open(kDir + "/reference.safetensors");
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  std::map<std::string, std::unique_ptr<Pipeline>> pipes;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    std::string family = c["family"];
    if (!pipes.count(family)) {
      auto p = Pipeline::Load(kDir + "/" + family, LoadOptions{});
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      pipes[family] = std::move(*p);
    }
    GenerateParams params;
    params.prompt = c["prompt"];
    params.negative_prompt = c["negative_prompt"];
    params.height = c["height"];
    params.width = c["width"];
    params.steps = c["steps"];
    params.guidance = c["guidance"];
    params.seed = c["seed"];
    params.sampler = c["sampler"];
    params.num_images = c.value("num_images", 1);
    params.guidance_rescale = c.value("guidance_rescale", 0.0);
    auto r = pipes[family]->Generate(params);
    ASSERT_TRUE(r.ok()) << "case " << i << ": " << r.status().ToString();
    at::Tensor want = *(*ref)->Get("latent_" + std::to_string(i));
    ASSERT_EQ(r->latents.sizes(), want.sizes()) << "case " << i;
    double err = ((r->latents - want).norm() / want.norm()).item<double>();
    std::printf("case %zu (%s, %s): latent relative error %.3g\n", i, family.c_str(),
                params.sampler.c_str(), err);
    EXPECT_LE(err, 1e-4) << "case " << i;

    at::Tensor imgs = *(*ref)->Get("image_" + std::to_string(i));  // [N, H, W, 3]
    ASSERT_EQ(imgs.size(0), params.num_images) << "case " << i;
    ASSERT_EQ(r->extra_images.size() + 1, static_cast<size_t>(params.num_images)) << "case " << i;
    for (int k = 0; k < params.num_images; ++k) {
      RgbImage& image = k == 0 ? r->image : r->extra_images[k - 1];
      at::Tensor img = imgs[k];
      ASSERT_EQ(img.size(0), image.height);
      ASSERT_EQ(img.size(1), image.width);
      at::Tensor ours = at::from_blob(image.pixels.data(), {image.height, image.width, 3}, at::kByte);
      at::Tensor diff = (ours.to(at::kInt) - img.to(at::kInt)).abs();
      EXPECT_LE(diff.max().item<int>(), 1) << "case " << i << " image " << k;  // fp rounding at .5 boundaries only
      EXPECT_LT(diff.to(at::kFloat).mean().item<float>(), 0.01) << "case " << i << " image " << k;
    }
  }
}

}  // namespace
}  // namespace distri::pipeline
