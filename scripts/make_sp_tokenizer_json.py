#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizers/sp_bpe/{tokenizer.json,tokenizer_config.json}: a small
SentencePiece-style BPE tokenizer in the layout of Llama 2's, Mistral's and TinyLlama's
tokenizer.json (a Prepend("▁") + Replace(" ", "▁") normalizer, no pre-tokenizer, <0xNN> byte
tokens with byte_fallback, <unk> <s> </s>), its merges learned here from Debian's fortunes
(package fortunes-min/fortunes), so that no model has to be downloaded.

Standard library only: python3 scripts/make_sp_tokenizer_json.py [FORTUNES_FILE]
The test (tests/data/test_hf_tokenizers.cpp) compares bigbatch's ids on this file, and on
variants of its front end, with those of @huggingface/tokenizers.
"""
import collections
import json
import os
import sys

MERGES = 600
SPACE = "\u2581"

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/games/fortunes/computers"
docs = [d.strip("\n") for d in open(src, encoding="utf-8").read().split("\n%\n") if d.strip()]

# words as SentencePiece sees them: the text with spaces as "▁", cut before each "▁"
words = collections.Counter()
for d in docs:
    norm = SPACE + d.replace(" ", SPACE)
    word = ""
    for ch in norm:
        if ch == SPACE and word:
            words[word] += 1
            word = ""
        word += ch
    if word:
        words[word] += 1

chars = collections.Counter()
for w, n in words.items():
    for ch in w:
        chars[ch] += n
alphabet = sorted(ch for ch, n in chars.items() if n >= 3 and ch != "\n")  # the rest falls back to bytes

vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
for b in range(256):
    vocab["<0x%02X>" % b] = len(vocab)
for ch in alphabet:
    vocab.setdefault(ch, len(vocab))

split = {w: [ch if ch in vocab else None for ch in w] for w in words}
merges = []
while len(merges) < MERGES:
    pairs = collections.Counter()
    for w, syms in split.items():
        for a, b in zip(syms, syms[1:]):
            if a is not None and b is not None:
                pairs[(a, b)] += words[w]
    if not pairs:
        break
    (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))  # most frequent, ties by text
    merges.append(a + " " + b)
    vocab.setdefault(a + b, len(vocab))
    for w, syms in split.items():
        out, i = [], 0
        while i < len(syms):
            if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                out.append(a + b)
                i += 2
            else:
                out.append(syms[i])
                i += 1
        split[w] = out

special = lambda i, t: {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                        "normalized": False, "special": True}
tokenizer = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": SPACE},
        {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]},
    "pre_tokenizer": None,
    "post_processor": {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "vocab": vocab, "merges": merges},
}
config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
          "unk_token": "<unk>", "pad_token": None, "legacy": True, "model_max_length": 2048,
          "tokenizer_class": "LlamaTokenizer"}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizers", "sp_bpe")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(tokenizer, f, ensure_ascii=False, indent=1)
with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
    json.dump(config, f, indent=1)
print(f"{len(vocab)} tokens, {len(merges)} merges from {len(docs)} fortunes of {src}")
