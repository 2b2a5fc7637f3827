// CLIP's byte-level BPE tokenizer, as used by Stable Diffusion 1.x/2.x and SDXL.
//
// Reads a diffusers `tokenizer/` (or `tokenizer_2/`) folder: vocab.json (token -> id),
// merges.txt (BPE merges, highest priority first; a first line "#version ..." is skipped),
// and, when present, tokenizer_config.json and special_tokens_map.json for the special tokens
// (bos/eos/unk/pad, defaults <|startoftext|> / <|endoftext|>; SD 1.x pads with <|endoftext|>,
// SDXL's tokenizer_2 with "!"), their added_tokens_decoder and model_max_length (default 77).
//
// Produces the ids of transformers' CLIPTokenizer (transformers 5, backed by `tokenizers`):
//   1. special tokens are cut out first: those marked normalized=false (and bos/eos/unk/pad
//      given as plain strings) are matched on the raw text, case-sensitively; the others on
//      the normalized text;
//   2. normalization: NFC, every run of whitespace -> one space, lowercase;
//   3. split with <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
//      [^\s\p{L}\p{N}]+ (whitespace is dropped);
//   4. each piece's UTF-8 bytes are mapped to printable characters (GPT-2's bytes_to_unicode),
//      "</w>" is appended to the last one, and BPE merges by rank;
//   5. BOS + tokens + EOS, truncated to model_max_length keeping EOS, padded with pad.
// Unicode handling and its known approximations: actors/model/clip_unicode.h. ftfy is not
// applied (transformers >= 5 does not either).
//
// A ClipTokenizer is immutable after Load; copies share the tables; all methods are const and
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"

namespace distri::model {

class ClipTokenizer {
 public:
  // Errors name the file: NotFound for a missing vocab.json / merges.txt, ParseError for
  // malformed content ("tokenizer/merges.txt: line 7: merge token 'ab' is not in vocab.json").
  static Result<ClipTokenizer> Load(const std::string& dir);

  // The prompt's token ids, without BOS/EOS, not truncated. InvalidArgument when `prompt` is
  // not valid UTF-8 (the message names the byte offset).
  Result<std::vector<int64_t>> Tokenize(std::string_view prompt) const;
  // [BOS, tokens..., EOS] with the tokens truncated to max_length() - 2 (EOS is always kept).
  Result<std::vector<int64_t>> EncodeUnpadded(std::string_view prompt) const;
  // EncodeUnpadded padded with pad_id() to exactly max_length() ids: what the text encoders of
  // the diffusers pipelines receive.
  Result<std::vector<int64_t>> Encode(std::string_view prompt) const;

  int64_t bos_id() const;
  int64_t eos_id() const;
  int64_t pad_id() const;
  int64_t unk_id() const;
  int64_t max_length() const;  // model_max_length: 77 for every SD tokenizer
  int64_t vocab_size() const;  // largest id + 1; the text encoder's vocab_size must be >= this
  std::optional<int64_t> TokenId(std::string_view token) const;
  // The vocabulary string of `id` (byte-level form, e.g. "cat</w>"), or "" when unknown.
  std::string TokenString(int64_t id) const;

 public:
  struct Tables;  // opaque: the parsed vocabulary, merges and special tokens

 private:
  explicit ClipTokenizer(std::shared_ptr<const Tables> tables) : t_(std::move(tables)) {}
  void AppendPieceIds(std::u32string_view normalized, std::vector<int64_t>* ids) const;
  std::shared_ptr<const Tables> t_;
};

// Writes a small but complete CLIP tokenizer into `dir` (created if needed): vocab.json with
// the 256 byte symbols, their "</w>" forms, merges learnt from a built-in corpus of prompt
// words, then <|startoftext|> and <|endoftext|> (the layout of the real CLIP vocabulary, so
// "!" is id 0); merges.txt; tokenizer_config.json and special_tokens_map.json with
// model_max_length 77 and `pad_token` ("<|endoftext|>" like SD 1.x, or "!" like SDXL's
// tokenizer_2; it must be one of the vocabulary's tokens). transformers' CLIPTokenizer loads
// it. Used by `distri model init` for tiny random models; the text encoder's vocab_size is
// TinyClipTokenizerVocabSize().
Status WriteTinyClipTokenizer(const std::string& dir, std::string_view pad_token = "<|endoftext|>");
int64_t TinyClipTokenizerVocabSize();

}  // namespace distri::model
