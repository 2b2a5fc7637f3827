#include "actors/model/safetensors.h"

#include <gtest/gtest.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace distri::model {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/distri_st_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a file with the given raw header JSON and `data_bytes` zero bytes of data.
  std::string WriteRaw(const std::string& header, size_t data_bytes, int64_t claimed_len = -1) {
    std::string path = dir_ + "/raw.safetensors";
    std::ofstream out(path, std::ios::binary);
    uint64_t len = claimed_len >= 0 ? static_cast<uint64_t>(claimed_len) : header.size();
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << header << std::string(data_bytes, '\0');
    return path;
  }

  std::string dir_;
};

TEST_F(SafetensorsTest, RoundTripEveryDtype) {
  TensorMap in;
  in["a.f32"] = at::randn({3, 4});
  in["b.f16"] = at::randn({5}).to(at::kHalf);
  in["c.bf16"] = at::randn({2, 2, 2}).to(at::kBFloat16);
  in["d.i64"] = at::arange(7, at::kLong);
  in["e.scalar"] = at::scalar_tensor(3.5);
  in["f.empty"] = at::empty({0, 3});
  ASSERT_TRUE(SaveSafetensors(dir_ + "/m.safetensors", in, {{"format", "pt"}}).ok());
  auto f = SafetensorsFile::Open(dir_ + "/m.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->entries().size(), in.size());
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  for (const auto& [name, t] : in) {
    auto got = (*f)->Get(name);
    ASSERT_TRUE(got.ok()) << name;
    EXPECT_EQ(got->scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(got->equal(t)) << name;
  }
  // Converting on load.
  auto all = (*f)->GetAll(at::kHalf);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->at("a.f32").scalar_type(), at::kHalf);
  EXPECT_EQ(all->at("d.i64").scalar_type(), at::kLong);  // integers are never converted
  EXPECT_FALSE((*f)->Get("nope").ok());
}

TEST_F(SafetensorsTest, TensorsOutliveTheFileObject) {
  ASSERT_TRUE(SaveSafetensors(dir_ + "/m.safetensors", {{"w", at::ones({64})}}).ok());
  at::Tensor t;
  {
    auto f = SafetensorsFile::Open(dir_ + "/m.safetensors");
    ASSERT_TRUE(f.ok());
    t = *(*f)->Get("w");
  }
  EXPECT_EQ(t.sum().item<float>(), 64.0f);
  t.add_(1);  // a write to the copy-on-write mapping must not crash
  EXPECT_EQ(t.sum().item<float>(), 128.0f);
}

TEST_F(SafetensorsTest, RejectsMalformedHeaders) {
  struct Case {
    std::string header;
    size_t data;
    std::string expect;
  } cases[] = {
      {"not json", 0, "header is not valid JSON"},
      {"[1,2]", 0, "header is not a JSON object"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, "outside the data section"},
      {R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "shape [3] needs 12 bytes, data_offsets give 8"},
      {R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8, "unsupported dtype \"Q4\""},
      {R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "non-integer or negative dimension"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, "outside the data section"},
      {R"({"w":{"dtype":"F32","shape":[2]}})", 8, "data_offsets must be two non-negative integers"},
      {R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8, "shape is too large"},
      {R"({"w":7})", 0, "entry is not an object"},
  };
  for (const auto& c : cases) {
    auto f = SafetensorsFile::Open(WriteRaw(c.header, c.data));
    ASSERT_FALSE(f.ok()) << c.header;
    EXPECT_EQ(f.status().code(), StatusCode::kParseError);
    EXPECT_NE(f.status().message().find(c.expect), std::string::npos) << f.status().message();
  }
}

TEST_F(SafetensorsTest, RejectsHeaderLengthBeyondFileAndTinyFiles) {
  auto f = SafetensorsFile::Open(WriteRaw("{}", 0, /*claimed_len=*/1 << 20));
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("does not fit the file"), std::string::npos) << f.status().message();
  std::ofstream(dir_ + "/tiny.safetensors") << "abc";
  auto tiny = SafetensorsFile::Open(dir_ + "/tiny.safetensors");
  ASSERT_FALSE(tiny.ok());
  EXPECT_NE(tiny.status().message().find("need at least 8"), std::string::npos);
  EXPECT_EQ(SafetensorsFile::Open(dir_ + "/missing.safetensors").status().code(), StatusCode::kNotFound);
}

TEST_F(SafetensorsTest, ComponentVariantAndShards) {
  fs::create_directories(dir_ + "/unet");
  ASSERT_TRUE(SaveSafetensors(dir_ + "/unet/diffusion_pytorch_model.safetensors", {{"w", at::ones({2})}}).ok());
  // No fp16 variant: falls back to the plain file.
  auto plain = LoadComponentWeights(dir_ + "/unet", "diffusion_pytorch_model", "fp16");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->at("w").scalar_type(), at::kFloat);
  ASSERT_TRUE(SaveSafetensors(dir_ + "/unet/diffusion_pytorch_model.fp16.safetensors",
                              {{"w", at::full({2}, 2.0).to(at::kHalf)}}).ok());
  auto fp16 = LoadComponentWeights(dir_ + "/unet", "diffusion_pytorch_model", "fp16", at::kFloat);
  ASSERT_TRUE(fp16.ok());
  EXPECT_EQ(fp16->at("w").scalar_type(), at::kFloat);
  EXPECT_EQ(fp16->at("w")[0].item<float>(), 2.0f);

  fs::create_directories(dir_ + "/te");
  ASSERT_TRUE(SaveSafetensors(dir_ + "/te/model-00001-of-00002.safetensors", {{"a", at::ones({1})}}).ok());
  ASSERT_TRUE(SaveSafetensors(dir_ + "/te/model-00002-of-00002.safetensors", {{"b", at::zeros({1})}}).ok());
  std::ofstream(dir_ + "/te/model.safetensors.index.json")
      << R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})";
  auto sharded = LoadComponentWeights(dir_ + "/te", "model");
  ASSERT_TRUE(sharded.ok()) << sharded.status().ToString();
  EXPECT_EQ(sharded->size(), 2u);

  std::ofstream(dir_ + "/te/model.safetensors.index.json", std::ios::trunc)
      << R"({"weight_map":{"a":"../../etc/passwd"}})";
  auto evil = LoadComponentWeights(dir_ + "/te", "model");
  ASSERT_FALSE(evil.ok());
  EXPECT_NE(evil.status().message().find("not a file in the same folder"), std::string::npos);
  std::ofstream(dir_ + "/te/model.safetensors.index.json", std::ios::trunc)
      << R"({"weight_map":{"c":"model-00001-of-00002.safetensors"}})";
  auto listed = LoadComponentWeights(dir_ + "/te", "model");
  ASSERT_FALSE(listed.ok());
  EXPECT_NE(listed.status().message().find("tensor 'c' is listed in"), std::string::npos);

  auto none = LoadComponentWeights(dir_ + "/nothing", "model");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
}

TEST_F(SafetensorsTest, OnlyVariantWeightsLoadWithoutAskingForTheVariant) {
  // A folder saved with save_pretrained(variant="fp16") has no plain file: with no variant
  // asked, its only variant loads; with two variants the error names both and --variant.
  fs::create_directories(dir_ + "/vae");
  ASSERT_TRUE(SaveSafetensors(dir_ + "/vae/diffusion_pytorch_model.fp16.safetensors",
                              {{"w", at::full({2}, 3.0).to(at::kHalf)}}).ok());
  auto only = LoadComponentWeights(dir_ + "/vae", "diffusion_pytorch_model");
  ASSERT_TRUE(only.ok()) << only.status().ToString();
  EXPECT_EQ(only->at("w")[1].item<float>(), 3.0f);
  ASSERT_TRUE(SaveSafetensors(dir_ + "/vae/diffusion_pytorch_model.bf16.safetensors",
                              {{"w", at::full({2}, 3.0).to(at::kBFloat16)}}).ok());
  auto two = LoadComponentWeights(dir_ + "/vae", "diffusion_pytorch_model");
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.status().code(), StatusCode::kNotFound);
  EXPECT_NE(two.status().message().find("bf16, fp16"), std::string::npos) << two.status().message();
  EXPECT_NE(two.status().message().find("--variant"), std::string::npos);
  // An explicit variant still picks it.
  auto bf16 = LoadComponentWeights(dir_ + "/vae", "diffusion_pytorch_model", "bf16");
  ASSERT_TRUE(bf16.ok());
  EXPECT_EQ(bf16->at("w").scalar_type(), at::kBFloat16);
  // Other files beside it ("diffusion_pytorch_model.fp16.safetensors.bak", another basename)
  // are not variants.
  fs::create_directories(dir_ + "/te2");
  std::ofstream(dir_ + "/te2/model.fp16.safetensors.bak") << "x";
  ASSERT_TRUE(SaveSafetensors(dir_ + "/te2/other.fp16.safetensors", {{"w", at::ones({1})}}).ok());
  auto none = LoadComponentWeights(dir_ + "/te2", "model");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no weights found"), std::string::npos) << none.status().message();
}

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    proj = register_module("proj", torch::nn::Linear(4, 3));
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 2, 3)));
  }
  torch::nn::Linear proj{nullptr};
  torch::nn::Conv2d conv{nullptr};
};

TEST(LoadStateDict, CopiesByNameAndNamesProblems) {
  TinyImpl m;
  TensorMap w = {{"proj.weight", at::ones({3, 4}).to(at::kHalf)}, {"proj.bias", at::zeros({3})},
                 {"conv.weight", at::full({2, 3, 3, 3}, 0.5)}, {"conv.bias", at::ones({2})}};
  ASSERT_TRUE(LoadStateDict(m, w, "tiny").ok());
  EXPECT_EQ(m.proj->weight.sum().item<float>(), 12.0f);
  EXPECT_EQ(m.proj->weight.scalar_type(), at::kFloat);  // converted to the parameter's dtype

  TensorMap missing = w;
  missing.erase("conv.bias");
  Status s = LoadStateDict(m, missing, "tiny");
  EXPECT_EQ(s.message(), "tiny: weights missing from the files: conv.bias");

  TensorMap shaped = w;
  shaped["proj.weight"] = at::ones({4, 3});
  EXPECT_EQ(LoadStateDict(m, shaped, "tiny").message(),
            "tiny: proj.weight: expected shape [3, 4], file has [4, 3]");

  TensorMap extra = w;
  extra["proj.lora.weight"] = at::ones({1});
  EXPECT_NE(LoadStateDict(m, extra, "tiny").message().find("unexpected tensors in the files"), std::string::npos);
  EXPECT_TRUE(LoadStateDict(m, extra, "tiny", /*allow_unexpected=*/true).ok());
}

}  // namespace
}  // namespace distri::model
