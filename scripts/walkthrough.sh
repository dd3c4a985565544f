#!/usr/bin/env bash
# The README's fine-tuning walkthrough, end to end on this machine (no downloads): a small
# Llama-style model learns Debian's fortune cookies byte by byte, then a LoRA adapter on top of
# it learns the Jargon File (jargon-text); loss and samples before and after.
# Usage: scripts/walkthrough.sh [BUILD_DIR] [WORK_DIR]   (after scripts/setup.sh and a build)
# Reruns replace the previous one in WORK_DIR (--overwrite).
set -euo pipefail
cd "$(dirname "$0")/.."
bb="$(pwd)/${1:-build}/bigbatch"
W="${2:-/tmp/bigbatch-walkthrough}"
J=/usr/share/doc/jargon-text/jargon.txt.gz
mkdir -p "$W"
set -x

# 1. A base model on fortunes: Llama layout (RMSNorm, rotary positions, SwiGLU, 2 key/value
#    heads for 8 query heads), 6 layers, 256 wide, byte tokenizer.
"$bb" train model.type=llama model.n_layer=6 model.n_head=8 model.n_kv_head=2 model.n_embd=256 \
  model.block_size=128 data.path=/usr/share/games/fortunes train.precision=bf16 \
  train.micro_batch_size=16 train.grad_accum_steps=2 train.steps=300 train.lr=2e-3 train.warmup_steps=20 \
  train.log_every=50 train.eval_every=150 train.checkpoint_every=0 sample.max_new_tokens=0 out_dir="$W/base" --overwrite

# 2. Before: the base model on the Jargon File.
"$bb" eval --model "$W/base" --data "$J" --batches 16 --micro-batch 8
"$bb" generate --model "$W/base" --prompt "hacker n. " --max-new-tokens 120 --temperature 0.7 --top-p 0.9 --seed 1

# 3. LoRA on the jargon: base weights frozen in bf16, only the adapters train.
"$bb" train model.init="$W/base" data.path="$J" lora.r=16 lora.alpha=32 \
  lora.target_modules="q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj" lora.base_dtype=bf16 \
  train.precision=bf16 train.checkpointing=selective train.micro_batch_size=16 train.grad_accum_steps=2 \
  train.steps=120 train.lr=3e-3 train.warmup_steps=10 train.log_every=30 train.eval_every=60 \
  train.checkpoint_every=0 sample.max_new_tokens=0 out_dir="$W/jargon" --overwrite

# 4. After: the adapter on top of the base, then merged into a plain model.
"$bb" eval --model "$W/base" --adapter "$W/jargon" --data "$J" --batches 16 --micro-batch 8
"$bb" generate --model "$W/base" --adapter "$W/jargon" --prompt "hacker n. " --max-new-tokens 120 \
  --temperature 0.7 --top-p 0.9 --seed 1
"$bb" merge --base "$W/base" --adapter "$W/jargon" --out "$W/merged" --overwrite
"$bb" eval --model "$W/merged" --data "$J" --batches 16 --micro-batch 8
