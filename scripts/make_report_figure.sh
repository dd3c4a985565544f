#!/usr/bin/env bash
# Makes docs/k1-vs-k8.png, the README's picture: the default job's loss with K = 1 (one batch
# of 64) and with K = 8 (eight micro-batches of 8), overlaid by `bigbatch report`. About two
# minutes on 2 cores. Needs ./build (see the README's quick start) and scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./build/bigbatch
out=runs/figure
mkdir -p "$out"
"$bin" train train.micro_batch_size=64 train.grad_accum_steps=1 sample.max_new_tokens=0 \
  out_dir="$out/k1" --overwrite
"$bin" train train.micro_batch_size=8 train.grad_accum_steps=8 sample.max_new_tokens=0 \
  out_dir="$out/k8" --overwrite
"$bin" report "$out/k1" "$out/k8" --out "$out/k1-vs-k8.html"
node scripts/report_figure.js "$out/k1-vs-k8.html" loss-step docs/k1-vs-k8.png
echo "wrote docs/k1-vs-k8.png (and $out/k1-vs-k8.html)"
