"""Checks that transformers' CLIPTokenizer loads WriteTinyClipTokenizer's files and encodes
like the C++ tokenizer.

    python3 check_tiny_tokenizer.py DIR

DIR holds tokenizer/ and tokenizer_2/ and cpp_ids.json, written by the C++ test
ClipTinyTokenizer.WritesFilesForTransformers (ctest runs it first, see tests.cmake).
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from transformers import CLIPTokenizer  # noqa: E402


def main():
    root = sys.argv[1]
    with open(os.path.join(root, "cpp_ids.json"), encoding="utf-8") as f:
        cpp = json.load(f)
    failures = 0
    for name, pad_id in (("tokenizer", None), ("tokenizer_2", 0)):
        tok = CLIPTokenizer.from_pretrained(os.path.join(root, name))
        assert tok.model_max_length == 77, tok.model_max_length
        if pad_id is not None:
            assert tok.pad_token_id == pad_id, (name, tok.pad_token_id)
        for prompt, ids in zip(cpp["prompts"], cpp[name]):
            ref = tok(prompt, padding="max_length", max_length=77, truncation=True).input_ids
            if ref != ids:
                failures += 1
                print(f"{name}: {prompt!r}\n  transformers {ref}\n  distri       {ids}")
    print(f"check_tiny_tokenizer: {failures} mismatches")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
