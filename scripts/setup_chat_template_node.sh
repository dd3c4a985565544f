#!/usr/bin/env bash
# Installs the npm package @huggingface/jinja into tests/chat_template/node unless it is there,
# at the version pinned by the package.json and package-lock.json committed beside it: Hugging
# Face's JavaScript Jinja for chat templates, which the chat-template test
# (tests/data/test_jinja.cpp, through tests/chat_template/render.js) compares bigbatch against.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/chat_template/node"
if [ -f "$dir/node_modules/@huggingface/jinja/package.json" ]; then exit 0; fi
npm ci --prefix "$dir" --no-audit --no-fund >/dev/null
