#include "actors/model/json_config.h"

#include <gtest/gtest.h>

namespace distri::model {
namespace {

JsonConfig Parse(const char* text) {
  auto c = JsonConfig::Parse(text, "unet/config.json");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

TEST(JsonConfig, ReadsValuesAndFallbacks) {
  JsonConfig c = Parse(R"({"in_channels": 4, "norm_eps": 1e-5, "use_linear_projection": true,
      "act_fn": "silu", "block_out_channels": [320, 640], "attention_head_dim": 8,
      "num_attention_heads": null, "sample_size": 128.0, "heads": [5, 10]})");
  EXPECT_EQ(*c.GetInt("in_channels"), 4);
  EXPECT_EQ(*c.GetInt("sample_size"), 128);  // integral float accepted
  EXPECT_DOUBLE_EQ(*c.GetDouble("norm_eps"), 1e-5);
  EXPECT_TRUE(*c.GetBool("use_linear_projection", false));
  EXPECT_EQ(*c.GetString("act_fn"), "silu");
  EXPECT_EQ(*c.GetIntList("block_out_channels"), (std::vector<int64_t>{320, 640}));
  EXPECT_EQ(*c.GetIntOrList("attention_head_dim", 3), (std::vector<int64_t>{8, 8, 8}));
  EXPECT_EQ(*c.GetIntOrList("heads", 2), (std::vector<int64_t>{5, 10}));
  EXPECT_FALSE(c.Has("num_attention_heads"));  // null counts as absent
  EXPECT_EQ(*c.GetInt("num_attention_heads", 7), 7);
  EXPECT_EQ(*c.GetIntOrList("transformer_layers_per_block", 2, 1), (std::vector<int64_t>{1, 1}));
}

TEST(JsonConfig, ErrorsNameFileAndKey) {
  JsonConfig c = Parse(R"({"a": "x", "b": [1, "two"], "heads": [1, 2, 3], "f": 1.5})");
  EXPECT_EQ(c.GetInt("a").status().message(), "unet/config.json: a: expected an integer, found \"x\"");
  EXPECT_EQ(c.GetInt("f").status().message(), "unet/config.json: f: expected an integer, found 1.5");
  EXPECT_EQ(c.GetIntList("b").status().message(),
            "unet/config.json: b: expected a list of integers, found element \"two\"");
  EXPECT_EQ(c.GetIntOrList("heads", 2).status().message(),
            "unet/config.json: heads: expected 2 entries (one per block), found 3");
  EXPECT_EQ(c.GetString("missing").status().message(), "unet/config.json: missing: is required but missing");
  EXPECT_FALSE(c.GetBool("a", false).ok());
}

TEST(JsonConfig, ParseAndLoadErrors) {
  auto bad = JsonConfig::Parse("{\"a\": ", "x.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kParseError);
  EXPECT_EQ(bad.status().message().rfind("x.json: invalid JSON at byte", 0), 0u);
  EXPECT_FALSE(JsonConfig::Parse("[1]", "x.json").ok());
  EXPECT_EQ(JsonConfig::Load("/nonexistent/config.json").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace distri::model
