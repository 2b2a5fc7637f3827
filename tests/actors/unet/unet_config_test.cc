// UNet2DConditionOptions::FromConfig: what is read, and that unsupported options are refused
// with an error naming the file and the key.
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "actors/model/json_config.h"
#include "actors/model/unet/unet_options.h"

namespace distri::model {
namespace {

// SD 1.5's real config, abridged to what matters.
constexpr const char* kSd15 = R"({
  "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
  "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false, "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
  "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
)";

Result<UNet2DConditionOptions> Parse(const std::string& extra) {
  auto config = JsonConfig::Parse(std::string(kSd15) + extra + "}", "unet/config.json");
  if (!config.ok()) return config.status();
  return UNet2DConditionOptions::FromConfig(*config);
}

TEST(UNetConfig, ReadsSd15) {
  auto o = Parse("");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->block_out_channels, (std::vector<int64_t>{320, 640, 1280, 1280}));
  EXPECT_EQ(o->num_attention_heads, (std::vector<int64_t>{8, 8, 8, 8}));  // attention_head_dim = heads
  EXPECT_EQ(o->cross_attention_dim, (std::vector<int64_t>{768, 768, 768, 768}));
  EXPECT_EQ(o->layers_per_block, (std::vector<int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(o->transformer_layers_per_block, (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(o->sample_size, (std::vector<int64_t>{64}));
  EXPECT_FALSE(o->has_text_time());
  EXPECT_EQ(o->time_embed_dim(), 1280);
}

TEST(UNetConfig, ReadsSdxlOptions) {
  auto config = JsonConfig::Parse(R"({
    "_class_name": "UNet2DConditionModel", "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20], "block_out_channels": [320, 640, 1280], "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "projection_class_embeddings_input_dim": 2816, "transformer_layers_per_block": [1, 2, 10],
    "use_linear_projection": true, "num_attention_heads": null, "class_embed_type": null, "sample_size": 128})",
                                  "sdxl/unet/config.json");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto o = UNet2DConditionOptions::FromConfig(*config);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_TRUE(o->has_text_time());
  EXPECT_EQ(o->num_attention_heads, (std::vector<int64_t>{5, 10, 20}));
  EXPECT_EQ(o->transformer_layers_per_block, (std::vector<int64_t>{1, 2, 10}));
  EXPECT_EQ(o->projection_class_embeddings_input_dim, 2816);
  EXPECT_TRUE(o->use_linear_projection);
}

struct Unsupported {
  const char* extra;
  const char* key;
};
void PrintTo(const Unsupported& u, std::ostream* os) { *os << u.extra; }

class UNetConfigUnsupported : public ::testing::TestWithParam<Unsupported> {};

TEST_P(UNetConfigUnsupported, ErrorNamesFileAndKey) {
  auto o = Parse(std::string(", ") + GetParam().extra);
  ASSERT_FALSE(o.ok()) << GetParam().extra;
  const std::string& message = o.status().message();
  EXPECT_NE(message.find(std::string("unet/config.json: ") + GetParam().key + ":"), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Keys, UNetConfigUnsupported,
    ::testing::Values(Unsupported{R"("class_embed_type": "timestep")", "class_embed_type"},
                      Unsupported{R"("num_class_embeds": 10)", "num_class_embeds"},
                      Unsupported{R"("attention_type": "gated")", "attention_type"},
                      Unsupported{R"("dual_cross_attention": true)", "dual_cross_attention"},
                      Unsupported{R"("only_cross_attention": true)", "only_cross_attention"},
                      Unsupported{R"("time_cond_proj_dim": 256)", "time_cond_proj_dim"},
                      Unsupported{R"("mid_block_only_cross_attention": true)", "mid_block_only_cross_attention"},
                      Unsupported{R"("num_attention_heads": 8)", "num_attention_heads"},
                      Unsupported{R"("encoder_hid_dim_type": "text_proj")", "encoder_hid_dim_type"},
                      Unsupported{R"("addition_embed_type": "image")", "addition_embed_type"},
                      Unsupported{R"("resnet_time_scale_shift": "scale_shift")", "resnet_time_scale_shift"},
                      Unsupported{R"("act_fn": "gelu")", "act_fn"},
                      Unsupported{R"("time_embedding_type": "fourier")", "time_embedding_type"},
                      Unsupported{R"("mid_block_type": "UNetMidBlock2DSimpleCrossAttn")", "mid_block_type"},
                      Unsupported{R"("_class_name": "UNet2DModel")", "_class_name"}),
    [](const auto& info) { return std::string(info.param.key); });

TEST(UNetConfig, UnsupportedBlockTypeIsNamed) {
  auto config = JsonConfig::Parse(R"({"down_block_types": ["AttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "AttnUpBlock2D"], "block_out_channels": [32, 64]})",
                                  "unet/config.json");
  ASSERT_TRUE(config.ok());
  auto o = UNet2DConditionOptions::FromConfig(*config);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().message(),
            "unet/config.json: down_block_types: \"AttnDownBlock2D\" is not supported (supported: DownBlock2D, "
            "CrossAttnDownBlock2D)");
}

TEST(UNetConfig, StructuralErrors) {
  auto mismatch = Parse(R"(, "attention_head_dim": [8, 8])");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("attention_head_dim"), std::string::npos) << mismatch.status().message();

  auto heads = Parse(R"(, "attention_head_dim": 7)");
  ASSERT_FALSE(heads.ok());
  EXPECT_NE(heads.status().message().find("unet/config.json: attention_head_dim: block 0: 320 channels do not split into 7 heads"),
            std::string::npos)
      << heads.status().message();

  auto text_time = Parse(R"(, "addition_embed_type": "text_time")");
  ASSERT_FALSE(text_time.ok());
  EXPECT_NE(text_time.status().message().find("addition_time_embed_dim"), std::string::npos)
      << text_time.status().message();
}

}  // namespace
}  // namespace distri::model
