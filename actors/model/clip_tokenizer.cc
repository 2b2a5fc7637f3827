#include "actors/model/clip_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "actors/model/clip_unicode.h"

namespace distri::model {
namespace cu = clip_unicode;
using Json = nlohmann::json;

struct ClipTokenizer::Tables {
  std::unordered_map<std::string, int64_t> vocab;
  std::unordered_map<int64_t, std::string> id_to_token;
  // (left id << 32 | right id) -> (rank, merged id), as the `tokenizers` BPE model keeps it.
  std::unordered_map<uint64_t, std::pair<int64_t, int64_t>> merges;
  std::array<std::string, 256> byte_symbol;  // bytes_to_unicode, UTF-8 encoded
  // Added (special) tokens, cut out before the split: `raw` ones on the prompt as given,
  // `normalized` ones (their content normalized too) on the normalized text.
  std::vector<std::pair<std::u32string, int64_t>> raw_tokens, normalized_tokens;
  int64_t bos = 0, eos = 0, pad = 0, unk = 0, max_length = 77, vocab_size = 0;
};

namespace {

constexpr int64_t kDefaultMaxLength = 77;

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open (does the tokenizer folder exist?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IoError(path + ": read failed");
  return ss.str();
}

Result<Json> ReadJson(const std::string& path) {
  DISTRI_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    return Status::ParseError(path + ": not valid JSON: " + e.what());
  }
}

std::array<std::string, 256> ByteSymbols() {
  std::array<std::string, 256> out;
  for (int b = 0; b < 256; ++b) {
    cu::AppendUtf8(cu::ByteLevelSymbol(static_cast<unsigned char>(b)), &out[b]);
  }
  return out;
}

// Step 2 of the pipeline (see the header): NFC, whitespace runs -> " ", lowercase.
std::u32string Normalize(std::u32string_view text) {
  const std::u32string nfc = cu::ComposeNfc(text);
  std::u32string out;
  out.reserve(nfc.size());
  bool in_space = false;
  for (char32_t cp : nfc) {
    if (cu::IsWhitespace(cp)) {
      if (!in_space) out.push_back(U' ');
      in_space = true;
      continue;
    }
    in_space = false;
    cu::AppendLowercase(cp, &out);
  }
  return out;
}

// Cuts `text` at the added tokens, leftmost-longest match first (as `tokenizers`' added
// vocabulary does). Token pieces carry their id, text pieces carry -1.
std::vector<std::pair<std::u32string, int64_t>> SplitOnTokens(
    std::u32string_view text, const std::vector<std::pair<std::u32string, int64_t>>& tokens) {
  std::vector<std::pair<std::u32string, int64_t>> out;
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const std::pair<std::u32string, int64_t>* best = nullptr;
    for (const auto& t : tokens) {
      if (!t.first.empty() && text.substr(i, t.first.size()) == t.first &&
          (best == nullptr || t.first.size() > best->first.size())) {
        best = &t;
      }
    }
    if (best == nullptr) {
      ++i;
      continue;
    }
    if (i > start) out.emplace_back(std::u32string(text.substr(start, i - start)), -1);
    out.emplace_back(best->first, best->second);
    i += best->first.size();
    start = i;
  }
  if (start < text.size()) out.emplace_back(std::u32string(text.substr(start)), -1);
  return out;
}

// Step 3: the split pattern, then the re-split of `tokenizers`' ByteLevel pre-tokenizer (it
// runs GPT-2's pattern over every piece). The latter changes only the pieces of the two
// special-token alternatives: "<|endoftext|>" becomes "<|", "endoftext", "|>". They still
// matter as alternatives: "<|endoftext|>'" gives "|>" and "'", not one run "|>'". (Special
// tokens proper were already cut out in step 1; these are the ones left as text.)
std::vector<std::u32string_view> SplitPieces(std::u32string_view s) {
  static constexpr std::u32string_view kContractions[] = {U"'s", U"'t", U"'re", U"'ve",
                                                          U"'m", U"'ll", U"'d"};
  static constexpr std::u32string_view kSpecials[] = {U"<|startoftext|>", U"<|endoftext|>"};
  enum Kind { kSpace, kLetter, kNumber, kOther };
  auto kind = [](char32_t c) {
    if (cu::IsWhitespace(c)) return kSpace;
    if (cu::IsLetter(c)) return kLetter;
    return cu::IsNumber(c) ? kNumber : kOther;
  };
  auto starts = [&](size_t i, std::u32string_view what) { return s.substr(i, what.size()) == what; };
  std::vector<std::u32string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == U'<') {
      auto it = std::find_if(std::begin(kSpecials), std::end(kSpecials),
                             [&](std::u32string_view c) { return starts(i, c); });
      if (it != std::end(kSpecials)) {
        out.push_back(s.substr(i, 2));                   // "<|"
        out.push_back(s.substr(i + 2, it->size() - 4));  // the name
        out.push_back(s.substr(i + it->size() - 2, 2));  // "|>"
        i += it->size();
        continue;
      }
    }
    if (s[i] == U'\'') {
      auto it = std::find_if(std::begin(kContractions), std::end(kContractions),
                             [&](std::u32string_view c) { return starts(i, c); });
      if (it != std::end(kContractions)) {
        out.push_back(s.substr(i, it->size()));
        i += it->size();
        continue;
      }
    }
    const Kind k = kind(s[i]);
    if (k == kSpace) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    if (k != kNumber) {  // [\p{N}] takes one digit at a time; the others are greedy runs
      while (j < s.size() && kind(s[j]) == k) ++j;
    }
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// One special token as tokenizer_config.json / special_tokens_map.json give it: a string, or
// an AddedToken object {"content": ..., "normalized": ...}.
struct SpecialToken {
  std::string content;
  bool normalized = false;
};

Status ReadSpecialToken(const Json& file, const std::string& path, const char* key,
                        SpecialToken* token) {
  auto it = file.find(key);
  if (it == file.end() || it->is_null()) return Status::Ok();
  if (it->is_string()) {
    *token = {it->get<std::string>(), false};
  } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    const Json& n = it->value("normalized", Json(false));
    *token = {(*it)["content"].get<std::string>(), n.is_boolean() && n.get<bool>()};
  } else {
    return Status::ParseError(path + ": " + key + ": expected a string or an object with " +
                              "\"content\", found " + it->dump());
  }
  return Status::Ok();
}

Status LoadVocab(const std::string& path, ClipTokenizer::Tables* t);
Status LoadMerges(const std::string& path, ClipTokenizer::Tables* t);
Status LoadTokenizerJson(const std::string& path, ClipTokenizer::Tables* t);
Status LoadSpecialTokens(const std::string& dir, ClipTokenizer::Tables* t);

}  // namespace

Result<ClipTokenizer> ClipTokenizer::Load(const std::string& dir) {
  auto t = std::make_shared<Tables>();
  t->byte_symbol = ByteSymbols();
  try {  // nlohmann throws on a value of the wrong type ("special": "yes")
    // The classic files (vocab.json + merges.txt, as the hub's SD/SDXL repositories ship them)
    // win; folders saved by transformers 5 hold only tokenizer.json with the same tables.
    if (!std::ifstream(dir + "/vocab.json") && std::ifstream(dir + "/tokenizer.json")) {
      DISTRI_RETURN_IF_ERROR(LoadTokenizerJson(dir + "/tokenizer.json", t.get()));
    } else {
      DISTRI_RETURN_IF_ERROR(LoadVocab(dir + "/vocab.json", t.get()));
      DISTRI_RETURN_IF_ERROR(LoadMerges(dir + "/merges.txt", t.get()));
    }
    DISTRI_RETURN_IF_ERROR(LoadSpecialTokens(dir, t.get()));
  } catch (const Json::exception& e) {
    return Status::ParseError(dir + ": tokenizer files: " + e.what());
  }
  return ClipTokenizer(std::move(t));
}

namespace {

Status VocabFromJson(const Json& vocab, const std::string& path, ClipTokenizer::Tables* t) {
  if (!vocab.is_object() || vocab.empty()) {
    return Status::ParseError(path + ": expected a JSON object {token: id}, found " +
                              std::string(vocab.type_name()));
  }
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return Status::ParseError(path + ": token '" + token +
                                "': expected a non-negative integer id, found " + id.dump());
    }
    const int64_t i = id.get<int64_t>();
    t->vocab.emplace(token, i);
    t->id_to_token.emplace(i, token);
    t->vocab_size = std::max(t->vocab_size, i + 1);
  }
  return Status::Ok();
}

Status LoadVocab(const std::string& path, ClipTokenizer::Tables* t) {
  DISTRI_ASSIGN_OR_RETURN(Json vocab, ReadJson(path));
  return VocabFromJson(vocab, path, t);
}

// Adds one merge rule of priority `rank`; `where` names the file and entry for errors.
Status AddMerge(const std::string& left, const std::string& right, int64_t rank, const std::string& where,
                ClipTokenizer::Tables* t) {
  auto id_of = [&](const std::string& token) -> Result<int64_t> {
    auto it = t->vocab.find(token);
    if (it == t->vocab.end()) return Status::ParseError(where + ": merge token '" + token + "' is not in the vocabulary");
    return it->second;
  };
  DISTRI_ASSIGN_OR_RETURN(int64_t a, id_of(left));
  DISTRI_ASSIGN_OR_RETURN(int64_t b, id_of(right));
  DISTRI_ASSIGN_OR_RETURN(int64_t merged, id_of(left + right));
  // The first occurrence of a pair wins, as in `tokenizers`.
  t->merges.emplace(static_cast<uint64_t>(a) << 32 | static_cast<uint64_t>(b), std::make_pair(rank, merged));
  return Status::Ok();
}

// tokenizer.json of `tokenizers`: model.type "BPE", model.vocab {token: id}, model.merges as
// ["a b", ...] (older files) or [["a", "b"], ...] (newer ones).
Status LoadTokenizerJson(const std::string& path, ClipTokenizer::Tables* t) {
  DISTRI_ASSIGN_OR_RETURN(Json j, ReadJson(path));
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    return Status::ParseError(path + ": expected an object with a \"model\" object");
  }
  const Json& m = j["model"];
  if (m.value("type", std::string()) != "BPE") return Status::ParseError(path + ": model.type: expected \"BPE\"");
  if (!m.contains("vocab")) return Status::ParseError(path + ": model.vocab is missing");
  DISTRI_RETURN_IF_ERROR(VocabFromJson(m["vocab"], path + ": model.vocab", t));
  if (!m.contains("merges") || !m["merges"].is_array()) return Status::ParseError(path + ": model.merges: expected a list");
  int64_t rank = 0;
  for (const Json& e : m["merges"]) {
    std::string where = path + ": model.merges[" + std::to_string(rank) + "]";
    std::string left, right;
    if (e.is_string()) {
      const std::string line = e.get<std::string>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == line.size()) {
        return Status::ParseError(where + ": expected \"left right\", found '" + line + "'");
      }
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      left = e[0].get<std::string>();
      right = e[1].get<std::string>();
    } else {
      return Status::ParseError(where + ": expected a pair of strings, found " + e.dump());
    }
    DISTRI_RETURN_IF_ERROR(AddMerge(left, right, rank++, where, t));
  }
  return Status::Ok();
}

// Format of `tokenizers`: an optional first "#version" line, then one "left right" pair per
// line, highest priority first; both halves and their concatenation must be in the vocabulary.
Status LoadMerges(const std::string& path, ClipTokenizer::Tables* t) {
  DISTRI_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0, rank = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("#version", 0) == 0) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      return Status::ParseError(path + ": line " + std::to_string(line_no) +
                                ": expected two symbols separated by one space, found '" + line +
                                "'");
    }
    DISTRI_RETURN_IF_ERROR(AddMerge(line.substr(0, space), line.substr(space + 1), rank++,
                                    path + ": line " + std::to_string(line_no), t));
  }
  return Status::Ok();
}

// Which special tokens exist and how they are matched follows transformers 5: bos/eos/unk/pad
// from tokenizer_config.json, overridden key by key by special_tokens_map.json; a plain string
// is matched on the raw text, an object by its "normalized" flag, and when one string serves
// several roles the last of bos, eos, unk, pad decides. Entries of added_tokens_decoder
// override all of that with their own flags.
Status LoadSpecialTokens(const std::string& dir, ClipTokenizer::Tables* t) {
  const std::string config_path = dir + "/tokenizer_config.json";
  const std::string map_path = dir + "/special_tokens_map.json";
  Json config = Json::object(), map = Json::object();
  if (std::ifstream(config_path)) {
    DISTRI_ASSIGN_OR_RETURN(config, ReadJson(config_path));
  }
  if (std::ifstream(map_path)) {
    DISTRI_ASSIGN_OR_RETURN(map, ReadJson(map_path));
  }
  if (!config.is_object()) return Status::ParseError(config_path + ": expected a JSON object");
  if (!map.is_object()) return Status::ParseError(map_path + ": expected a JSON object");

  const char* keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
  SpecialToken special[4] = {{"<|startoftext|>"}, {"<|endoftext|>"}, {"<|endoftext|>"},
                             {"<|endoftext|>"}};
  int64_t* ids[4] = {&t->bos, &t->eos, &t->unk, &t->pad};
  std::map<std::string, std::pair<bool, int64_t>> added;  // content -> (normalized, id)
  for (int k = 0; k < 4; ++k) {
    DISTRI_RETURN_IF_ERROR(ReadSpecialToken(config, config_path, keys[k], &special[k]));
    DISTRI_RETURN_IF_ERROR(ReadSpecialToken(map, map_path, keys[k], &special[k]));
    auto it = t->vocab.find(special[k].content);
    if (it == t->vocab.end()) {
      return Status::ParseError(dir + ": " + keys[k] + " '" + special[k].content +
                                "' is not in vocab.json");
    }
    *ids[k] = it->second;
    added[special[k].content] = {special[k].normalized, it->second};
  }
  if (auto atd = config.find("added_tokens_decoder"); atd != config.end() && atd->is_object()) {
    for (const auto& [id_text, entry] : atd->items()) {
      if (!entry.is_object() || !entry.contains("content") || !entry["content"].is_string()) {
        return Status::ParseError(config_path + ": added_tokens_decoder." + id_text +
                                  ": expected an object with a string \"content\"");
      }
      const std::string content = entry["content"].get<std::string>();
      const bool special_flag = entry.value("special", false);
      const bool normalized = entry.value("normalized", !special_flag);
      auto it = t->vocab.find(content);
      int64_t id = 0;
      if (it != t->vocab.end()) {
        id = it->second;
      } else {
        try {
          id = std::stoll(id_text);
        } catch (const std::exception&) {
          return Status::ParseError(config_path + ": added_tokens_decoder: key '" + id_text +
                                    "' is not an integer id");
        }
        t->id_to_token.emplace(id, content);
        t->vocab_size = std::max(t->vocab_size, id + 1);
      }
      added[content] = {normalized, id};
    }
  }
  for (const auto& [content, flags] : added) {
    DISTRI_ASSIGN_OR_RETURN(std::u32string text, cu::DecodeUtf8(content));
    if (flags.first) {
      t->normalized_tokens.emplace_back(Normalize(text), flags.second);
    } else {
      t->raw_tokens.emplace_back(std::move(text), flags.second);
    }
  }

  // model_max_length: some configs write 1e30 for "no limit"; every SD text encoder has 77.
  if (auto it = config.find("model_max_length"); it != config.end() && it->is_number()) {
    const double v = it->get<double>();
    if (v < 2) return Status::ParseError(config_path + ": model_max_length must be >= 2");
    t->max_length = v > 1e6 ? kDefaultMaxLength : static_cast<int64_t>(v);
  }
  return Status::Ok();
}

}  // namespace

// Steps 3-4 for one normalized stretch of text.
void ClipTokenizer::AppendPieceIds(std::u32string_view normalized,
                                   std::vector<int64_t>* ids) const {
  std::string bytes, symbol;
  std::vector<int64_t> word;
  for (std::u32string_view piece : SplitPieces(normalized)) {
    bytes.clear();
    for (char32_t cp : piece) cu::AppendUtf8(cp, &bytes);
    word.clear();
    for (size_t i = 0; i < bytes.size(); ++i) {
      symbol = t_->byte_symbol[static_cast<unsigned char>(bytes[i])];
      if (i + 1 == bytes.size()) symbol += "</w>";
      auto it = t_->vocab.find(symbol);
      word.push_back(it == t_->vocab.end() ? t_->unk : it->second);
    }
    // Greedy BPE: merge the adjacent pair of lowest rank (leftmost on ties) until none is in
    // the table. This is the order of `tokenizers`' priority queue. Words are short, so the
    // quadratic scan is cheaper than a heap.
    while (word.size() > 1) {
      size_t best = word.size();
      int64_t best_rank = std::numeric_limits<int64_t>::max(), best_id = 0;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        auto it = t_->merges.find(static_cast<uint64_t>(word[i]) << 32 |
                                  static_cast<uint64_t>(word[i + 1]));
        if (it != t_->merges.end() && it->second.first < best_rank) {
          best = i, best_rank = it->second.first, best_id = it->second.second;
        }
      }
      if (best == word.size()) break;
      word[best] = best_id;
      word.erase(word.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    ids->insert(ids->end(), word.begin(), word.end());
  }
}

Result<std::vector<int64_t>> ClipTokenizer::Tokenize(std::string_view prompt) const {
  Result<std::u32string> text = cu::DecodeUtf8(prompt);
  if (!text.ok()) return text.status().WithContext("prompt");
  std::vector<int64_t> ids;
  for (const auto& [raw, raw_id] : SplitOnTokens(*text, t_->raw_tokens)) {
    if (raw_id >= 0) {
      ids.push_back(raw_id);
      continue;
    }
    for (const auto& [piece, id] : SplitOnTokens(Normalize(raw), t_->normalized_tokens)) {
      if (id >= 0) {
        ids.push_back(id);
      } else {
        AppendPieceIds(piece, &ids);
      }
    }
  }
  return ids;
}

Result<std::vector<int64_t>> ClipTokenizer::EncodeUnpadded(std::string_view prompt) const {
  DISTRI_ASSIGN_OR_RETURN(std::vector<int64_t> tokens, Tokenize(prompt));
  const size_t keep = std::min(tokens.size(), static_cast<size_t>(t_->max_length - 2));
  std::vector<int64_t> ids;
  ids.reserve(keep + 2);
  ids.push_back(t_->bos);
  ids.insert(ids.end(), tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(keep));
  ids.push_back(t_->eos);
  return ids;
}

Result<std::vector<int64_t>> ClipTokenizer::Encode(std::string_view prompt) const {
  DISTRI_ASSIGN_OR_RETURN(std::vector<int64_t> ids, EncodeUnpadded(prompt));
  ids.resize(static_cast<size_t>(t_->max_length), t_->pad);
  return ids;
}

int64_t ClipTokenizer::bos_id() const { return t_->bos; }
int64_t ClipTokenizer::eos_id() const { return t_->eos; }
int64_t ClipTokenizer::pad_id() const { return t_->pad; }
int64_t ClipTokenizer::unk_id() const { return t_->unk; }
int64_t ClipTokenizer::max_length() const { return t_->max_length; }
int64_t ClipTokenizer::vocab_size() const { return t_->vocab_size; }

std::optional<int64_t> ClipTokenizer::TokenId(std::string_view token) const {
  auto it = t_->vocab.find(std::string(token));
  if (it == t_->vocab.end()) return std::nullopt;
  return it->second;
}

std::string ClipTokenizer::TokenString(int64_t id) const {
  auto it = t_->id_to_token.find(id);
  return it == t_->id_to_token.end() ? std::string() : it->second;
}

}  // namespace distri::model
