#!/usr/bin/env bash
# Installs into tests/gguf/node, unless they are there, the npm packages the GGUF export test
# (tests/gguf/test_gguf_llama_cpp.cpp, through tests/gguf/run_gguf.mjs) checks files with:
# node-llama-cpp, whose prebuilt CPU llama.cpp loads and runs them, and @huggingface/gguf,
# which parses their header. Pinned: a llama.cpp release decides what a valid file is.
# NODE_LLAMA_CPP_SKIP_DOWNLOAD keeps its install script from building or fetching llama.cpp;
# the prebuilt binary comes inside the npm package.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/gguf/node"
if [ -f "$dir/node_modules/node-llama-cpp/package.json" ] &&
   [ -f "$dir/node_modules/@huggingface/gguf/package.json" ]; then exit 0; fi
mkdir -p "$dir"
NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --prefix "$dir" --no-audit --no-fund --save-exact \
  node-llama-cpp@3.21.1 @huggingface/gguf@0.3.2 >/dev/null
