"""Reference for the CLIP tokenizer and text encoders (tests/actors/clip/clip_parity_test.cc).

    python3 ref_clip.py OUT_DIR

Writes, in diffusers' folder layout:
  tokenizer/        SD 1.x-style files (special tokens as AddedToken objects, pad <|endoftext|>)
  tokenizer_2/      SDXL tokenizer_2-style files (added_tokens_decoder, pad "!" = id 0)
  text_encoder/     CLIPTextModel, quick_gelu, eos_token_id 2 (argmax pooling), re-saved with
                    the "text_model." names and position_ids buffer of the SD 1.x hub files
  text_encoder_v5/  the same model exactly as transformers 5 saves it (no "text_model." prefix)
  text_encoder_2/   CLIPTextModelWithProjection, gelu, eos_token_id = <|endoftext|>'s id
  prompts.json      the prompts (hand-written tricky ones, then seeded random strings) and the
                    untruncated token ids of both tokenizers
  reference.safetensors  ids [N, 77] and outputs of both encoders for all prompts
Both tokenizers share a byte-level BPE vocabulary learnt here, in the real CLIP vocabulary's
layout, from prompts with accents, CJK and emoji, so that BPE merges run on every script.
"""
import collections
import json
import os
import random

import parity_common as pc
import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

PROMPTS = [
    "a photo of a cat",
    "A photo of a CAT!!",
    "  lots   of\tspaces\n\nand newlines  ",
    "",
    "don't stop: it's 5 o'clock, we'll see. THEY'RE here, I'M sure, I'D go",
    "Café crème brûlée, naïve façade, Ångström",
    "Cafe\u0301 decomposed, A\u030angstrom, \u212b sign",
    "日本語のテキスト 東京タワー 北京",
    "emoji 😀👍🏽 party 🎉🎉 ✨✨✨",
    "ÀÉÎÕÜ ΑΒΓ ΟΔΟΣ Москва İstanbul Ǆemal",
    "numbers 1234567890 and 3.14159, ½ ² ٣",
    "<|startoftext|>hi<|endoftext|> there",
    "<|ENDOFTEXT|> upper special",
    "mixed-case HTTP://Example.COM/path?q=1&b=2 #hashtag @user",
    "nbsp\u00a0ideographic\u3000space\u2003em zero\u200bwidth",
    "a'''s 's 're '''ve ''",
    "한국어 and jamo \u1100\u1161\u11a8",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "a highly detailed portrait of an astronaut riding a horse on the moon, " * 6,
    "!!! ??? ... --- ***",
]


def random_prompts(n, seed):
    """Seeded random strings over letters, digits, punctuation, whitespace, accents (composed
    and not), combining marks out of canonical order, CJK, Hangul jamo, emoji and special
    tokens: every branch of normalization and splitting."""
    rng = random.Random(seed)
    pieces = list("abcxyzABCXYZ0189 \t\n'''!!,.-#@&*()<>|/\\\"") + list("éÉàÅåçñøßœΣσςЖж½²٣३") + [
        "e\u0301", "A\u030a", "a\u0316\u0301", "a\u0301\u0316", "\u212b", "\ufb2c", "\uf900", "\u00a0",
        "\u3000", "\u200b", "\u1100\u1161\u11a8", "日本", "東京", "한국", "😀", "👍🏽", "🎉", "❤️", "İ", "ǅ",
        "\x01", "\u0085", "<|endoftext|>", "<|startoftext|>", "<|ENDOFTEXT|>", "'s", "'RE", "'ll"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(n)]


PROMPTS += random_prompts(40, seed=7)

CORPUS = PROMPTS + [
    "a photo of a dog in the garden, highly detailed, sharp focus, studio lighting",
    "the the the photo photo painting painting landscape mountains river sunset",
    "café café crème crème naïve naïve ångström ångström москва москва",
    "日本語 日本語 東京 東京 北京 北京 한국어 한국어",
    "😀😀 👍👍 🎉🎉 ✨✨ catcatcat dogdog",
]


def train_vocab(num_merges=400):
    """Byte-level BPE over the corpus, pieces exactly as CLIPTokenizer pre-tokenizes them."""
    b2u = bytes_to_unicode()
    base = list(b2u.values())  # printable bytes first: "!" is id 0, as in the real vocabulary
    vocab = {s: i for i, s in enumerate(base)}
    for s in base:
        vocab[s + "</w>"] = len(vocab)
    empty = CLIPTokenizer(vocab=dict(vocab, **{"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1}),
                          merges=[])
    backend = empty.backend_tokenizer
    words = collections.Counter()
    for text in CORPUS:
        for piece, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text)):
            words[tuple(piece[:-1]) + (piece[-1] + "</w>",)] += 1
    words = dict(words)
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), n = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if n < 2:
            break
        merges.append((a, b))
        vocab.setdefault(a + b, len(vocab))
        new_words = {}
        for w, cnt in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + cnt
        words = new_words
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, merges


def added_token(content, normalized):
    return {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False, "single_word": False}


def write_tokenizers(out, vocab, merges):
    for name in ("tokenizer", "tokenizer_2"):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    # SD 1.x (runwayml/stable-diffusion-v1-5) style: AddedToken objects, pad as a plain string.
    obj = lambda c: dict(added_token(c, True), __type="AddedToken")  # noqa: E731
    sd15 = {"add_prefix_space": False, "bos_token": obj(bos), "do_lower_case": True, "eos_token": obj(eos),
            "errors": "replace", "model_max_length": 77, "pad_token": eos, "tokenizer_class": "CLIPTokenizer",
            "unk_token": obj(eos)}
    with open(os.path.join(out, "tokenizer", "tokenizer_config.json"), "w") as f:
        json.dump(sd15, f, indent=2)
    with open(os.path.join(out, "tokenizer", "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": added_token(bos, True), "eos_token": added_token(eos, True),
                   "pad_token": eos, "unk_token": added_token(eos, True)}, f, indent=2)
    # SDXL tokenizer_2 style: added_tokens_decoder, pad "!" (id 0) not normalized.
    atd = {str(vocab["!"]): dict(added_token("!", False), special=True),
           str(vocab[bos]): dict(added_token(bos, True), special=True),
           str(vocab[eos]): dict(added_token(eos, True), special=True)}
    sdxl = {"add_prefix_space": False, "added_tokens_decoder": atd, "bos_token": bos,
            "clean_up_tokenization_spaces": True, "do_lower_case": True, "eos_token": eos, "errors": "replace",
            "model_max_length": 77, "pad_token": "!", "tokenizer_class": "CLIPTokenizer", "unk_token": eos}
    with open(os.path.join(out, "tokenizer_2", "tokenizer_config.json"), "w") as f:
        json.dump(sdxl, f, indent=2)
    with open(os.path.join(out, "tokenizer_2", "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": added_token(bos, True), "eos_token": added_token(eos, True),
                   "pad_token": added_token("!", False), "unk_token": added_token(eos, True)}, f, indent=2)


def run(model, ids):
    with torch.no_grad():
        o = model(input_ids=ids, output_hidden_states=True)
    return o


def main():
    out = pc.out_dir()
    pc.seeded(0)
    vocab, merges = train_vocab()
    write_tokenizers(out, vocab, merges)
    tok = CLIPTokenizer.from_pretrained(os.path.join(out, "tokenizer"))
    tok2 = CLIPTokenizer.from_pretrained(os.path.join(out, "tokenizer_2"))
    assert tok.pad_token_id == vocab["<|endoftext|>"] and tok2.pad_token_id == 0
    enc = lambda t: t(PROMPTS, padding="max_length", max_length=77, truncation=True,  # noqa: E731
                      return_tensors="pt").input_ids
    ids, ids2 = enc(tok), enc(tok2)
    with open(os.path.join(out, "prompts.json"), "w", encoding="utf-8") as f:
        json.dump({"prompts": PROMPTS,
                   "tokenizer": [tok(p, add_special_tokens=False).input_ids for p in PROMPTS],
                   "tokenizer_2": [tok2(p, add_special_tokens=False).input_ids for p in PROMPTS]},
                  f, ensure_ascii=False)

    common = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_attention_heads=4,
                  max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"], pad_token_id=1)
    te = CLIPTextModel(CLIPTextConfig(num_hidden_layers=3, hidden_act="quick_gelu", eos_token_id=2,
                                      projection_dim=16, **common)).eval()
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(num_hidden_layers=4, hidden_act="gelu", projection_dim=24,
                                                     eos_token_id=vocab["<|endoftext|>"], **common)).eval()
    pc.randomize_(te, seed=1)
    pc.randomize_(te2, seed=2)
    te.save_pretrained(os.path.join(out, "text_encoder_v5"), safe_serialization=True)
    te.save_pretrained(os.path.join(out, "text_encoder"), safe_serialization=True)
    te2.save_pretrained(os.path.join(out, "text_encoder_2"), safe_serialization=True)
    # The SD 1.x hub layout: "text_model." names plus the int64 position_ids buffer.
    path = os.path.join(out, "text_encoder", "model.safetensors")
    legacy = {("" if k.startswith("text_model.") else "text_model.") + k: v for k, v in load_file(path).items()}
    legacy["text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.int64)[None]
    save_file(legacy, path, metadata={"format": "pt"})

    o, o2 = run(te, ids), run(te2, ids2)
    with torch.no_grad():  # CLIPTextModelWithProjection's output has no pooler_output
        pooled2 = te2.text_model(input_ids=ids2).pooler_output
    assert len(o.hidden_states) == 4 and len(o2.hidden_states) == 5
    pc.save_tensors(os.path.join(out, "reference.safetensors"), {
        "te.ids": ids, "te.last_hidden_state": o.last_hidden_state, "te.pooled": o.pooler_output,
        "te.hidden_states": torch.stack(o.hidden_states),
        "te2.ids": ids2, "te2.last_hidden_state": o2.last_hidden_state, "te2.text_embeds": o2.text_embeds,
        "te2.pooled": pooled2,
        "te2.hidden_states": torch.stack(o2.hidden_states),
    })
    print(f"ref_clip: {len(PROMPTS)} prompts, vocab {len(vocab)} ({len(merges)} merges) -> {out}")


if __name__ == "__main__":
    main()
