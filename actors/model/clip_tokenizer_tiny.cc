// WriteTinyClipTokenizer: a small, complete CLIP tokenizer for tiny random test models.
//
// The vocabulary has the layout of the real one (openai/clip-vit-large-patch14): the 256
// byte symbols in bytes_to_unicode order, the same with "</w>", one entry per merge, then
// <|startoftext|> and <|endoftext|>. The merges are learnt here, deterministically, from a
// built-in corpus of prompt words (classic BPE training: repeatedly merge the most frequent
// adjacent pair), so BPE is exercised on ordinary prompts and the files are always consistent.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actors/model/clip_tokenizer.h"
#include "actors/model/clip_unicode.h"

namespace distri::model {
namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr const char* kCorpus =
    "a photo of a cat sitting on a table, a photo of a dog in the garden, a portrait of an old "
    "man, a painting of a beautiful landscape with mountains and a river at sunset, an "
    "astronaut riding a horse on the moon, a red car on the street at night, a castle in the "
    "clouds, digital art, oil painting, watercolor, highly detailed, sharp focus, high quality, "
    "studio lighting, trending on artstation, cinematic, photorealistic, 4k, 8k, the city of "
    "the future, a forest in the morning, a bowl of fruit on the kitchen table, the sea and "
    "the sky, a woman with a red hat, a man with a blue coat, flowers in a vase, a house by "
    "the lake, a cat and a dog, a bird on a tree, snow on the mountains, the light of the sun";
constexpr int kMaxMerges = 256;

struct TinyVocab {
  std::vector<std::string> tokens;  // in id order, specials last
  std::vector<std::pair<std::string, std::string>> merges;
};

// The order of the real vocabulary: printable bytes first, then the others.
std::vector<std::string> ByteSymbolsInVocabOrder() {
  std::vector<std::string> printable, rest;
  for (int b = 0; b < 256; ++b) {
    const auto byte = static_cast<unsigned char>(b);
    std::string s;
    clip_unicode::AppendUtf8(clip_unicode::ByteLevelSymbol(byte), &s);
    (clip_unicode::IsPrintableByte(byte) ? printable : rest).push_back(std::move(s));
  }
  printable.insert(printable.end(), rest.begin(), rest.end());
  return printable;
}

TinyVocab BuildTinyVocab() {
  TinyVocab v;
  const std::vector<std::string> bytes = ByteSymbolsInVocabOrder();
  v.tokens = bytes;
  for (const std::string& b : bytes) v.tokens.push_back(b + "</w>");
  std::set<std::string> known(v.tokens.begin(), v.tokens.end());

  // Corpus words as symbol sequences (the corpus is lowercase ASCII: one byte = one symbol).
  std::map<std::string, int64_t> counts;
  std::string word;
  for (const char* p = kCorpus;; ++p) {
    const char c = *p;
    if (c >= 'a' && c <= 'z') {
      word.push_back(c);
    } else {  // digits and punctuation are pieces of their own: nothing to merge
      if (!word.empty()) ++counts[word];
      word.clear();
      if (c == '\0') break;
    }
  }
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [w, n] : counts) {
    std::vector<std::string> symbols;
    for (char c : w) symbols.emplace_back(1, c);
    symbols.back() += "</w>";
    words.emplace_back(std::move(symbols), n);
  }

  for (int m = 0; m < kMaxMerges; ++m) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;  // ordered: stable ties
    for (const auto& [symbols, n] : words) {
      for (size_t i = 0; i + 1 < symbols.size(); ++i) pairs[{symbols[i], symbols[i + 1]}] += n;
    }
    const std::pair<std::string, std::string>* best = nullptr;
    int64_t best_count = 1;  // a pair seen once is not worth a merge
    for (const auto& [pair, n] : pairs) {
      if (n > best_count) best = &pair, best_count = n;
    }
    if (best == nullptr) break;
    const auto merge = *best;
    v.merges.push_back(merge);
    if (known.insert(merge.first + merge.second).second) {
      v.tokens.push_back(merge.first + merge.second);
    }
    for (auto& [symbols, n] : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == merge.first && symbols[i + 1] == merge.second) {
          merged.push_back(merge.first + merge.second);
          ++i;
        } else {
          merged.push_back(symbols[i]);
        }
      }
      symbols = std::move(merged);
    }
  }
  v.tokens.push_back("<|startoftext|>");
  v.tokens.push_back("<|endoftext|>");
  return v;
}

const TinyVocab& GetTinyVocab() {
  static const TinyVocab* vocab = new TinyVocab(BuildTinyVocab());
  return *vocab;
}

Status WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::IoError(path.string() + ": write failed");
  return Status::Ok();
}

OrderedJson AddedToken(const std::string& content, bool normalized) {
  return OrderedJson{{"content", content}, {"lstrip", false}, {"normalized", normalized},
                     {"rstrip", false}, {"single_word", false}};
}

}  // namespace

int64_t TinyClipTokenizerVocabSize() {
  return static_cast<int64_t>(GetTinyVocab().tokens.size());
}

Status WriteTinyClipTokenizer(const std::string& dir, std::string_view pad_token) {
  const TinyVocab& v = GetTinyVocab();
  OrderedJson vocab = OrderedJson::object();
  for (size_t i = 0; i < v.tokens.size(); ++i) vocab[v.tokens[i]] = static_cast<int64_t>(i);
  const std::string pad(pad_token);
  if (!vocab.contains(pad)) {
    return Status::InvalidArgument("WriteTinyClipTokenizer: pad token '" + pad +
                                   "' is not in the tiny vocabulary");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError(dir + ": cannot create directory: " + ec.message());

  std::string merges = "#version: 0.2\n";
  for (const auto& [a, b] : v.merges) merges += a + " " + b + "\n";

  // Specials as transformers saves them: bos/eos/unk normalized (matched after lowercasing),
  // a "!" pad token not normalized (SDXL's tokenizer_2 files have exactly that).
  const bool pad_normalized = pad == "<|endoftext|>";
  OrderedJson added = OrderedJson::object();
  const int64_t bos = vocab["<|startoftext|>"], eos = vocab["<|endoftext|>"];
  if (!pad_normalized) {
    added[std::to_string(vocab[pad].get<int64_t>())] = AddedToken(pad, false);
    added[std::to_string(vocab[pad].get<int64_t>())]["special"] = true;
  }
  added[std::to_string(bos)] = AddedToken("<|startoftext|>", true);
  added[std::to_string(bos)]["special"] = true;
  added[std::to_string(eos)] = AddedToken("<|endoftext|>", true);
  added[std::to_string(eos)]["special"] = true;
  OrderedJson config = {{"add_prefix_space", false},
                        {"added_tokens_decoder", added},
                        {"bos_token", "<|startoftext|>"},
                        {"clean_up_tokenization_spaces", true},
                        {"do_lower_case", true},
                        {"eos_token", "<|endoftext|>"},
                        {"errors", "replace"},
                        {"model_max_length", 77},
                        {"pad_token", pad},
                        {"tokenizer_class", "CLIPTokenizer"},
                        {"unk_token", "<|endoftext|>"}};
  OrderedJson special_map = {{"bos_token", AddedToken("<|startoftext|>", true)},
                             {"eos_token", AddedToken("<|endoftext|>", true)},
                             {"pad_token", AddedToken(pad, pad_normalized)},
                             {"unk_token", AddedToken("<|endoftext|>", true)}};

  const std::filesystem::path root(dir);
  DISTRI_RETURN_IF_ERROR(WriteText(root / "vocab.json", vocab.dump() + "\n"));
  DISTRI_RETURN_IF_ERROR(WriteText(root / "merges.txt", merges));
  DISTRI_RETURN_IF_ERROR(WriteText(root / "tokenizer_config.json", config.dump(2) + "\n"));
  DISTRI_RETURN_IF_ERROR(WriteText(root / "special_tokens_map.json", special_map.dump(2) + "\n"));
  return Status::Ok();
}

}  // namespace distri::model
