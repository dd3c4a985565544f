#!/usr/bin/env bash
# Installs onnxruntime-node into tests/onnx/node (for tests/onnx/run_onnx.js) unless it is
# there. The CPU runtime ships inside the npm package; ONNXRUNTIME_NODE_INSTALL=skip stops
# its install script from fetching the optional CUDA files, which needs other hosts.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/onnx/node"
if [ -d "$dir/node_modules/onnxruntime-node" ]; then exit 0; fi
mkdir -p "$dir"
ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$dir" --no-audit --no-fund onnxruntime-node@1.30.0 >/dev/null
