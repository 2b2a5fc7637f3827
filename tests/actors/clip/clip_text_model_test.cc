// Unit tests of the CLIP text encoders: state-dict names, shapes, pooling, causality, config
// reading and loader errors. Numerical parity with transformers is in clip_parity_test.cc.
#include "actors/model/clip_text_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "actors/model/json_config.h"
#include "actors/model/safetensors.h"

namespace distri::model {
namespace {

namespace fs = std::filesystem;

ClipTextModelOptions TinyOptions(bool projection) {
  ClipTextModelOptions o;
  o.vocab_size = 50;
  o.hidden_size = 16;
  o.intermediate_size = 32;
  o.num_hidden_layers = 2;
  o.num_attention_heads = 2;
  o.max_position_embeddings = 12;
  o.projection_dim = 8;
  o.with_projection = projection;
  o.hidden_act = projection ? "gelu" : "quick_gelu";
  return o;
}

std::string ConfigJson(const ClipTextModelOptions& o, const std::string& arch) {
  return "{\"architectures\": [\"" + arch + "\"], \"vocab_size\": " + std::to_string(o.vocab_size) +
         ", \"hidden_size\": " + std::to_string(o.hidden_size) +
         ", \"intermediate_size\": " + std::to_string(o.intermediate_size) +
         ", \"num_hidden_layers\": " + std::to_string(o.num_hidden_layers) +
         ", \"num_attention_heads\": " + std::to_string(o.num_attention_heads) +
         ", \"max_position_embeddings\": " + std::to_string(o.max_position_embeddings) +
         ", \"projection_dim\": " + std::to_string(o.projection_dim) + ", \"hidden_act\": \"" +
         o.hidden_act + "\", \"eos_token_id\": 2, \"layer_norm_eps\": 1e-05}";
}

ClipTextModel RandomModel(const ClipTextModelOptions& o, uint64_t seed) {
  ClipTextModel m(o);
  at::manual_seed(seed);
  at::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.copy_(at::randn(p.sizes()) * 0.3);
  m->eval();
  return m;
}

TensorMap StateDict(ClipTextModel& m) {
  TensorMap out;
  for (const auto& p : m->named_parameters()) out.emplace(p.key(), p.value().detach().clone());
  return out;
}

// [[bos, 5, 7, eos, pad...], [bos, 9, 3, 4, 11, eos, pad...]]: eos = 49 (the largest id).
at::Tensor Ids() {
  return at::tensor({48, 5, 7, 49, 1, 1, 1, 1, 1, 1, 48, 9, 3, 4, 11, 49, 1, 1, 1, 1},
                    at::kLong)
      .view({2, 10});
}

class ClipTextModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/distri_cliptext_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/text_encoder";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(fs::path(dir_).parent_path()); }
  void WriteModel(const ClipTextModelOptions& o, const TensorMap& weights,
                  const std::string& arch = "CLIPTextModel") {
    std::ofstream(dir_ + "/config.json") << ConfigJson(o, arch);
    ASSERT_TRUE(SaveSafetensors(dir_ + "/model.safetensors", weights).ok());
  }
  std::string dir_;
};

TEST_F(ClipTextModelTest, ParameterNamesAreTransformers) {
  ClipTextModel m(TinyOptions(true));
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  EXPECT_EQ(names.size(), 2u + 2 * 16 + 2 + 1);
  for (const char* n :
       {"text_model.embeddings.token_embedding.weight",
        "text_model.embeddings.position_embedding.weight",
        "text_model.encoder.layers.0.self_attn.q_proj.weight",
        "text_model.encoder.layers.1.self_attn.out_proj.bias",
        "text_model.encoder.layers.1.layer_norm2.weight", "text_model.encoder.layers.0.mlp.fc1.bias",
        "text_model.final_layer_norm.weight", "text_projection.weight"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  EXPECT_FALSE(names.count("text_projection.bias"));
  EXPECT_EQ(m->named_parameters()["text_projection.weight"].sizes(), at::IntArrayRef({8, 16}));
}

TEST_F(ClipTextModelTest, ShapesPoolingAndCausality) {
  ClipTextModel m = RandomModel(TinyOptions(true), 1);
  at::NoGradGuard no_grad;
  ClipTextOutput out = m->forward(Ids());
  EXPECT_EQ(out.last_hidden_state.sizes(), at::IntArrayRef({2, 10, 16}));
  ASSERT_EQ(out.hidden_states.size(), 3u);
  EXPECT_EQ(out.pooled.sizes(), at::IntArrayRef({2, 16}));
  EXPECT_EQ(out.text_embeds.sizes(), at::IntArrayRef({2, 8}));
  EXPECT_TRUE(at::equal(m->ApplyFinalLayerNorm(out.hidden_states.back()), out.last_hidden_state));
  // eos_token_id 2: pool at argmax(input_ids), the EOS positions 3 and 5.
  EXPECT_TRUE(at::equal(out.pooled[0], out.last_hidden_state[0][3]));
  EXPECT_TRUE(at::equal(out.pooled[1], out.last_hidden_state[1][5]));
  // Any other eos_token_id: its first position, even when a larger id comes earlier.
  ClipTextModelOptions o = TinyOptions(false);
  o.eos_token_id = 30;
  ClipTextModel m2 = RandomModel(o, 2);
  at::Tensor ids = at::tensor({48, 30, 49, 30, 30, 30}, at::kLong).view({1, 6});
  ClipTextOutput out2 = m2->forward(ids, /*keep_hidden_states=*/false);
  EXPECT_TRUE(out2.hidden_states.empty());
  EXPECT_FALSE(out2.text_embeds.defined());
  EXPECT_TRUE(at::equal(out2.pooled[0], out2.last_hidden_state[0][1]));
  // Causal: changing token 6 leaves positions 0..5 untouched.
  at::Tensor changed = Ids().clone();
  changed[0][6] = 17;
  ClipTextOutput out3 = m->forward(changed);
  EXPECT_TRUE(at::allclose(out3.last_hidden_state[0].narrow(0, 0, 6),
                           out.last_hidden_state[0].narrow(0, 0, 6)));
  EXPECT_FALSE(at::allclose(out3.last_hidden_state[0][6], out.last_hidden_state[0][6]));
}

TEST_F(ClipTextModelTest, LoadsBothNameStylesAndSkipsPositionIds) {
  ClipTextModel ref = RandomModel(TinyOptions(false), 3);
  TensorMap v5;  // transformers 5: no "text_model." prefix
  for (auto& [name, t] : StateDict(ref)) v5.emplace(name.substr(std::string("text_model.").size()), t);
  v5.emplace("embeddings.position_ids", at::arange(12, at::kLong).view({1, 12}));
  WriteModel(TinyOptions(false), v5);
  auto loaded = LoadClipTextModel(dir_, at::kFloat, at::kCPU);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_FALSE(loaded.value()->is_training());
  auto a = RunClipTextModel(*loaded, Ids());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  at::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(a->last_hidden_state, ref->forward(Ids()).last_hidden_state));

  TensorMap legacy = StateDict(ref);
  legacy.emplace("text_model.embeddings.position_ids", at::arange(12, at::kLong).view({1, 12}));
  WriteModel(TinyOptions(false), legacy);
  auto half = LoadClipTextModel(dir_, at::kBFloat16, at::kCPU);
  ASSERT_TRUE(half.ok()) << half.status().ToString();
  EXPECT_EQ(half.value()->parameters().front().scalar_type(), at::kBFloat16);
}

TEST_F(ClipTextModelTest, MissingMisShapedAndUnexpectedTensorsAreNamed) {
  ClipTextModel ref = RandomModel(TinyOptions(true), 4);
  TensorMap w = StateDict(ref);
  w.erase("text_model.encoder.layers.1.mlp.fc2.bias");
  WriteModel(TinyOptions(true), w, "CLIPTextModelWithProjection");
  auto r = LoadClipTextModel(dir_, at::kFloat, at::kCPU);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("text_encoder: weights missing from the files: "
                                      "text_model.encoder.layers.1.mlp.fc2.bias"),
            std::string::npos)
      << r.status().message();

  w = StateDict(ref);
  w["text_model.encoder.layers.0.self_attn.q_proj.weight"] = at::zeros({16, 8});
  WriteModel(TinyOptions(true), w, "CLIPTextModelWithProjection");
  r = LoadClipTextModel(dir_, at::kFloat, at::kCPU);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "text_encoder: text_model.encoder.layers.0.self_attn.q_proj.weight: expected shape "
            "[16, 16], file has [16, 8]");

  // A projection in the files of a config that says CLIPTextModel is unexpected.
  WriteModel(TinyOptions(true), StateDict(ref), "CLIPTextModel");
  r = LoadClipTextModel(dir_, at::kFloat, at::kCPU);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unexpected tensors in the files"), std::string::npos);
  EXPECT_NE(r.status().message().find("text_projection.weight"), std::string::npos);
}

TEST_F(ClipTextModelTest, ConfigErrors) {
  auto parse = [](const std::string& text) {
    auto c = JsonConfig::Parse(text, "text_encoder/config.json");
    EXPECT_TRUE(c.ok());
    return ClipTextModelOptions::FromConfig(*c);
  };
  auto ok = parse(ConfigJson(TinyOptions(true), "CLIPTextModelWithProjection"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->with_projection);
  EXPECT_EQ(ok->hidden_act, "gelu");
  EXPECT_EQ(parse("{\"hidden_size\": 30, \"num_attention_heads\": 4}").status().message(),
            "text_encoder/config.json: hidden_size 30 is not divisible by num_attention_heads 4");
  EXPECT_NE(parse("{\"hidden_act\": \"relu\"}").status().message().find("'relu' is not supported"),
            std::string::npos);
  EXPECT_NE(parse("{\"hidden_size\": \"big\"}").status().message().find("hidden_size"),
            std::string::npos);
  auto missing = LoadClipTextModel(dir_ + "/nowhere", at::kFloat, at::kCPU);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("config.json"), std::string::npos);
}

TEST_F(ClipTextModelTest, RunChecksInputs) {
  ClipTextModel m = RandomModel(TinyOptions(false), 5);
  EXPECT_NE(RunClipTextModel(m, Ids().to(at::kInt)).status().message().find("int64"),
            std::string::npos);
  EXPECT_EQ(RunClipTextModel(m, at::ones({1, 13}, at::kLong)).status().message(),
            "CLIP text encoder: 13 tokens, max_position_embeddings is 12");
  EXPECT_EQ(RunClipTextModel(m, at::full({1, 4}, 50, at::kLong)).status().message(),
            "CLIP text encoder: token ids must be in [0, 50), found 50");
  EXPECT_TRUE(RunClipTextModel(m, Ids()).ok());
}

}  // namespace
}  // namespace distri::model
