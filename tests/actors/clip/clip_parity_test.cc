// Parity with transformers 5 (fixture: tests/parity/ref_clip.py): token ids of both tokenizer
// styles (SD 1.x, SDXL tokenizer_2) on tricky prompts, and every output of both text encoders
// (CLIPTextModel with argmax pooling, CLIPTextModelWithProjection with first-EOS pooling).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "actors/model/clip_text_model.h"
#include "actors/model/clip_tokenizer.h"
#include "actors/model/safetensors.h"

namespace distri::model {
namespace {

const std::string kDir = DISTRI_PARITY_DIR;
constexpr double kTolerance = 1e-4;  // fp32, relative to the reference's largest magnitude

nlohmann::json Prompts() {
  std::ifstream in(kDir + "/prompts.json");
  return nlohmann::json::parse(in);
}

at::Tensor Reference(const std::string& name) {
  auto file = SafetensorsFile::Open(kDir + "/reference.safetensors");
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  auto t = (*file)->Get(name);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t->clone();
}

double RelativeError(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kFloat) - want).abs().max().item<double>() /
         std::max(want.abs().max().item<double>(), 1e-12);
}

// Empty when equal, else where and how `got` first differs from `want`.
std::string FirstDifference(const std::vector<int64_t>& got, const std::vector<int64_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  if (i == got.size() && i == want.size()) return "";
  auto at = [i](const std::vector<int64_t>& v) { return i < v.size() ? std::to_string(v[i]) : "end"; };
  return "first difference at " + std::to_string(i) + ": distri " + at(got) + ", transformers " +
         at(want) + " (lengths " + std::to_string(got.size()) + ", " + std::to_string(want.size()) +
         ")";
}

void ExpectTokenizerParity(const std::string& name, const std::string& prefix) {
  auto tok = ClipTokenizer::Load(kDir + "/" + name);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const nlohmann::json prompts = Prompts();
  const at::Tensor ids = Reference(prefix + ".ids");
  ASSERT_EQ(ids.size(0), static_cast<int64_t>(prompts["prompts"].size()));
  for (size_t i = 0; i < prompts["prompts"].size(); ++i) {
    const std::string prompt = prompts["prompts"][i].get<std::string>();
    auto tokens = tok->Tokenize(prompt);
    ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
    EXPECT_EQ(FirstDifference(*tokens, prompts[name][i].get<std::vector<int64_t>>()), "")
        << name << ": " << prompt;
    auto encoded = tok->Encode(prompt);
    ASSERT_TRUE(encoded.ok());
    const at::Tensor row = ids[static_cast<int64_t>(i)].contiguous();
    EXPECT_EQ(FirstDifference(*encoded, std::vector<int64_t>(row.data_ptr<int64_t>(),
                                                             row.data_ptr<int64_t>() + 77)),
              "")
        << name << ": " << prompt;
  }
}

TEST(ClipParity, TokenizerSd15Style) { ExpectTokenizerParity("tokenizer", "te"); }
TEST(ClipParity, TokenizerSdxlStyleWithExclamationPad) {
  ExpectTokenizerParity("tokenizer_2", "te2");
}

void ExpectModelParity(const std::string& component, const std::string& prefix) {
  auto model = LoadClipTextModel(kDir + "/" + component, at::kFloat, at::kCPU);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto out = RunClipTextModel(*model, Reference(prefix + ".ids"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();

  const at::Tensor hidden = Reference(prefix + ".hidden_states");
  ASSERT_EQ(static_cast<int64_t>(out->hidden_states.size()), hidden.size(0));
  double worst_hidden = 0;
  for (size_t i = 0; i < out->hidden_states.size(); ++i) {
    worst_hidden = std::max(worst_hidden,
                            RelativeError(out->hidden_states[i], hidden[static_cast<int64_t>(i)]));
  }
  const double penultimate = RelativeError(out->hidden_states[out->hidden_states.size() - 2],
                                           hidden[hidden.size(0) - 2]);
  const at::Tensor last = Reference(prefix + ".last_hidden_state");
  const double last_err = RelativeError(out->last_hidden_state, last);
  const double pooled_err = RelativeError(out->pooled, Reference(prefix + ".pooled"));
  double embeds_err = 0;
  if (prefix == "te2") {
    embeds_err = RelativeError(out->text_embeds, Reference(prefix + ".text_embeds"));
  } else {
    EXPECT_FALSE(out->text_embeds.defined());
  }
  std::printf("%s: relative error last_hidden_state %.2e, penultimate %.2e, all hidden %.2e, "
              "pooled %.2e, text_embeds %.2e\n",
              component.c_str(), last_err, penultimate, worst_hidden, pooled_err, embeds_err);
  EXPECT_LE(last_err, kTolerance);
  EXPECT_LE(penultimate, kTolerance);
  EXPECT_LE(worst_hidden, kTolerance);
  EXPECT_LE(pooled_err, kTolerance);
  EXPECT_LE(embeds_err, kTolerance);
}

// SD 1.x hub layout: "text_model." names and the position_ids buffer.
TEST(ClipParity, TextEncoderLegacyFiles) { ExpectModelParity("text_encoder", "te"); }
// The same weights as transformers 5 writes them (no "text_model." prefix).
TEST(ClipParity, TextEncoderTransformers5Files) { ExpectModelParity("text_encoder_v5", "te"); }
TEST(ClipParity, TextEncoderWithProjection) { ExpectModelParity("text_encoder_2", "te2"); }

}  // namespace
}  // namespace distri::model
