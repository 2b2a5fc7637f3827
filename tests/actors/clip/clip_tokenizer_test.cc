// Unit tests of the CLIP tokenizer: the tiny tokenizer writer, encoding invariants, the
// Unicode helpers and every load / prompt error. Parity with transformers is in
// clip_parity_test.cc (and check_tiny_tokenizer.py for WriteTinyClipTokenizer's files).
#include "actors/model/clip_tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "actors/model/clip_unicode.h"

namespace distri::model {
namespace {

namespace fs = std::filesystem;

class ClipTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/distri_cliptok_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    ASSERT_TRUE(WriteTinyClipTokenizer(dir_).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name, std::ios::binary | std::ios::trunc) << text;
  }
  ClipTokenizer LoadOrDie() {
    auto t = ClipTokenizer::Load(dir_);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return *t;
  }
  std::string dir_;
};

std::string Join(const ClipTokenizer& t, const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += t.TokenString(id) + " ";
  return s;
}

TEST_F(ClipTokenizerTest, TinyVocabularyHasClipLayout) {
  ClipTokenizer t = LoadOrDie();
  EXPECT_EQ(t.vocab_size(), TinyClipTokenizerVocabSize());
  EXPECT_GT(t.vocab_size(), 512 + 50) << "the corpus should give a few dozen merges at least";
  EXPECT_EQ(t.TokenId("!"), 0);
  EXPECT_EQ(t.TokenId("!</w>"), 256);
  EXPECT_EQ(t.bos_id(), t.vocab_size() - 2);
  EXPECT_EQ(t.eos_id(), t.vocab_size() - 1);
  EXPECT_EQ(t.pad_id(), t.eos_id());
  EXPECT_EQ(t.unk_id(), t.eos_id());
  EXPECT_EQ(t.max_length(), 77);
}

TEST_F(ClipTokenizerTest, EncodesWithMergesSpecialsAndPadding) {
  ClipTokenizer t = LoadOrDie();
  auto ids = t.Encode("A  Photo of a CAT!!");
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  ASSERT_EQ(ids->size(), 77u);
  auto unpadded = *t.EncodeUnpadded("A  Photo of a CAT!!");
  // "photo", "of", "cat" are merges of the tiny corpus; "!!" is not.
  EXPECT_EQ(Join(t, unpadded), "<|startoftext|> a</w> photo</w> of</w> a</w> cat</w> ! !</w> "
                               "<|endoftext|> ");
  for (size_t i = unpadded.size(); i < 77; ++i) EXPECT_EQ((*ids)[i], t.pad_id());
  // Special tokens in the prompt become their ids, not BPE pieces; whitespace is dropped.
  EXPECT_EQ(Join(t, *t.Tokenize("x<|endoftext|> y")), "x</w> <|endoftext|> y</w> ");
  // Digits are single pieces, contractions split off.
  EXPECT_EQ(Join(t, *t.Tokenize("4k it's")), "4</w> k</w> it</w> ' s</w> ");
}

TEST_F(ClipTokenizerTest, PadWithExclamationMarkLikeSdxl) {
  fs::remove_all(dir_);
  ASSERT_TRUE(WriteTinyClipTokenizer(dir_, "!").ok());
  ClipTokenizer t = LoadOrDie();
  EXPECT_EQ(t.pad_id(), 0);
  auto ids = *t.Encode("cat");
  EXPECT_EQ(ids[2], t.eos_id());
  EXPECT_EQ(ids[3], 0);
  EXPECT_EQ(ids[76], 0);
  EXPECT_FALSE(WriteTinyClipTokenizer(dir_, "<|pad|>").ok());
}

TEST_F(ClipTokenizerTest, EmptyAndLongPrompts) {
  ClipTokenizer t = LoadOrDie();
  auto empty = *t.Encode("");
  EXPECT_EQ(empty[0], t.bos_id());
  EXPECT_EQ(empty[1], t.eos_id());
  EXPECT_EQ(t.EncodeUnpadded("   \t\n ")->size(), 2u);
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "cat dog ";
  EXPECT_EQ(t.Tokenize(long_prompt)->size(), 200u);
  auto ids = *t.Encode(long_prompt);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids.front(), t.bos_id());
  EXPECT_EQ(ids.back(), t.eos_id()) << "truncation must keep EOS";
  EXPECT_EQ(t.EncodeUnpadded(long_prompt)->size(), 77u);
}

TEST_F(ClipTokenizerTest, InvalidUtf8IsAClearError) {
  ClipTokenizer t = LoadOrDie();
  const std::pair<std::string, std::string> cases[] = {
      {"ab\x80", "prompt: invalid UTF-8 at byte 2: unexpected continuation byte 0x80"},
      {"\xff", "invalid UTF-8 at byte 0: byte never valid in UTF-8: 0xff"},
      {"caf\xc3", "invalid UTF-8 at byte 3: truncated sequence"},
      {"\xc3(", "invalid UTF-8 at byte 1: expected a continuation byte, found 0x28"},
      {"\xe0\x80\xaf", "overlong encoding"},
      {"\xc0\xaf", "byte never valid in UTF-8: 0xc0"},
      {"\xed\xa0\x80", "encoded surrogate"},
      {"\xf4\x90\x80\x80", "above U+10FFFF"},
  };
  for (const auto& [prompt, message] : cases) {
    auto ids = t.Encode(prompt);
    ASSERT_FALSE(ids.ok()) << message;
    EXPECT_EQ(ids.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ids.status().message().find(message), std::string::npos) << ids.status().message();
  }
}

TEST_F(ClipTokenizerTest, BadVocabulary) {
  Write("vocab.json", "{\"a\": 1,");
  auto t = ClipTokenizer::Load(dir_);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kParseError);
  EXPECT_NE(t.status().message().find(dir_ + "/vocab.json: not valid JSON"), std::string::npos)
      << t.status().message();

  Write("vocab.json", "[\"a\", \"b\"]");
  EXPECT_NE(ClipTokenizer::Load(dir_).status().message().find("expected a JSON object"),
            std::string::npos);
  Write("vocab.json", "{\"a\": 0, \"b\": \"one\"}");
  EXPECT_NE(ClipTokenizer::Load(dir_).status().message().find(
                "vocab.json: token 'b': expected a non-negative integer id, found \"one\""),
            std::string::npos);
  fs::remove(dir_ + "/vocab.json");
  EXPECT_EQ(ClipTokenizer::Load(dir_).status().code(), StatusCode::kNotFound);
}

TEST_F(ClipTokenizerTest, BadMerges) {
  fs::remove(dir_ + "/merges.txt");
  auto t = ClipTokenizer::Load(dir_);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("merges.txt"), std::string::npos);

  Write("merges.txt", "#version: 0.2\nc a\nq z\n");  // "qz" is not in the vocabulary
  EXPECT_EQ(ClipTokenizer::Load(dir_).status().message(),
            dir_ + "/merges.txt: line 3: merge token 'qz' is not in the vocabulary");
  Write("merges.txt", "#version: 0.2\nc a t\n");
  EXPECT_NE(ClipTokenizer::Load(dir_).status().message().find(
                "line 2: expected two symbols separated by one space, found 'c a t'"),
            std::string::npos);
}

TEST_F(ClipTokenizerTest, SpecialTokensFromConfigFiles) {
  Write("special_tokens_map.json", "{\"pad_token\": \"<|nope|>\"}");
  EXPECT_NE(ClipTokenizer::Load(dir_).status().message().find(
                "pad_token '<|nope|>' is not in vocab.json"),
            std::string::npos);
  // special_tokens_map.json overrides tokenizer_config.json, objects are accepted.
  Write("special_tokens_map.json", "{\"pad_token\": {\"content\": \"!\", \"normalized\": false}}");
  EXPECT_EQ(LoadOrDie().pad_id(), 0);
  Write("tokenizer_config.json",
        "{\"added_tokens_decoder\": {\"0\": {\"content\": \"!\", \"special\": \"yes\"}}}");
  EXPECT_EQ(ClipTokenizer::Load(dir_).status().code(), StatusCode::kParseError);
  Write("special_tokens_map.json", "{\"pad_token\": 7}");
  EXPECT_NE(ClipTokenizer::Load(dir_).status().message().find("pad_token: expected a string"),
            std::string::npos);
  // No config files at all: the defaults of transformers' CLIPTokenizer.
  fs::remove(dir_ + "/special_tokens_map.json");
  fs::remove(dir_ + "/tokenizer_config.json");
  ClipTokenizer t = LoadOrDie();
  EXPECT_EQ(t.pad_id(), t.eos_id());
  EXPECT_EQ(t.max_length(), 77);
}

TEST(ClipUnicode, Classes) {
  namespace cu = clip_unicode;
  auto text = cu::DecodeUtf8("aé日😀");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, U"aé日😀");
  EXPECT_EQ(cu::EncodeUtf8(*text), "aé日😀");
  EXPECT_TRUE(cu::IsLetter(U'é') && cu::IsLetter(U'日') && cu::IsLetter(U'Ж'));
  EXPECT_FALSE(cu::IsLetter(U'😀') || cu::IsLetter(U'1') || cu::IsLetter(0x301));
  EXPECT_TRUE(cu::IsNumber(U'٣') && cu::IsNumber(U'½') && cu::IsNumber(U'7'));
  EXPECT_TRUE(cu::IsWhitespace(0x3000) && cu::IsWhitespace(0xA0));
  EXPECT_FALSE(cu::IsWhitespace(0x200B));
  EXPECT_EQ(cu::ByteLevelSymbol('a'), U'a');
  EXPECT_EQ(cu::ByteLevelSymbol(0x00), 0x100u);
  EXPECT_EQ(cu::ByteLevelSymbol(0x20), 0x120u);  // the space is "Ġ"
  EXPECT_EQ(cu::ByteLevelSymbol(0xAD), 0x143u);
  std::u32string lower;
  for (char32_t c : std::u32string(U"ÉΣЖİǅẞ")) cu::AppendLowercase(c, &lower);
  EXPECT_EQ(lower, U"éσжi\u0307ǆß");
  EXPECT_EQ(cu::ComposeNfc(U"e\u0301 A\u030a \u212b \u1100\u1161\u11a8"), U"é Å Å 각");
}

// Writes the tiny tokenizer files and the C++ ids of a few prompts for
// check_tiny_tokenizer.py (ctest runs the pair with DISTRI_CLIP_TINY_DIR set).
TEST(ClipTinyTokenizer, WritesFilesForTransformers) {
  const char* env = std::getenv("DISTRI_CLIP_TINY_DIR");
  const std::string root = env != nullptr ? std::string(env)
                                          : ::testing::TempDir() + "/distri_cliptiny_" +
                                                std::to_string(::getpid());
  const std::vector<std::string> prompts = {
      "a photo of a cat", "A portrait painting of an ASTRONAUT, highly detailed!!", "",
      "the light of the sun at sunset, 4k", "Café 東京 😀 it's"};
  nlohmann::json out = {{"prompts", prompts}};
  for (const std::string pad : {"<|endoftext|>", "!"}) {
    const std::string name = pad == "!" ? "tokenizer_2" : "tokenizer";
    ASSERT_TRUE(WriteTinyClipTokenizer(root + "/" + name, pad).ok());
    auto t = ClipTokenizer::Load(root + "/" + name);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    for (const std::string& p : prompts) out[name].push_back(*t->Encode(p));
  }
  std::ofstream(root + "/cpp_ids.json") << out.dump();
  if (env == nullptr) fs::remove_all(root);
}

}  // namespace
}  // namespace distri::model

namespace distri::model {
namespace {

// transformers 5 saves only tokenizer.json: the same vocabulary and merges must give the same ids,
// with merges written either as "a b" strings or as ["a", "b"] pairs.
TEST_F(ClipTokenizerTest, TokenizerJsonGivesTheSameIds) {
  ClipTokenizer classic = LoadOrDie();
  nlohmann::json vocab = nlohmann::json::parse(std::ifstream(dir_ + "/vocab.json"));
  std::ifstream merges_in(dir_ + "/merges.txt");
  nlohmann::json as_strings = nlohmann::json::array(), as_pairs = nlohmann::json::array();
  for (std::string line; std::getline(merges_in, line);) {
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    as_strings.push_back(line);
    as_pairs.push_back({line.substr(0, line.find(' ')), line.substr(line.find(' ') + 1)});
  }
  ASSERT_GT(as_pairs.size(), 10u);
  fs::remove(dir_ + "/vocab.json");
  fs::remove(dir_ + "/merges.txt");
  const std::string prompt = "A photo of an astronaut, riding a horse!! 123";
  for (const auto& merges : {as_strings, as_pairs}) {
    nlohmann::json tj = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
    Write("tokenizer.json", tj.dump());
    ClipTokenizer fast = LoadOrDie();
    EXPECT_EQ(*fast.Encode(prompt), *classic.Encode(prompt));
  }
  Write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "zz"]]}})");
  auto bad = ClipTokenizer::Load(dir_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("model.merges[0]: merge token 'zz' is not in the vocabulary"),
            std::string::npos) << bad.status().message();
  Write("tokenizer.json", R"({"model": {"type": "WordPiece"}})");
  EXPECT_NE(ClipTokenizer::Load(dir_).status().message().find("model.type: expected \"BPE\""), std::string::npos);
}

}  // namespace
}  // namespace distri::model
