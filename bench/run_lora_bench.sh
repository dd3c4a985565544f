#!/usr/bin/env bash
# LoRA against full fine-tuning of a GPT-2-124M-shaped model, effective batch 32 sequences of
# 512 tokens (micro-batches of 4, K = 8), bf16 compute. One configuration per process so each
# peak RSS is its own; prints one JSON line per run, then a table.
# Usage: bench/run_lora_bench.sh [BUILD_DIR] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
steps="${2:-2}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
common="--mb 4 --accum 8 --seq 512 --steps $steps --warmup 1 --precision bf16"

# LoRA r 8 on c_attn (PEFT's usual GPT-2 target), frozen base in bf16, each checkpoint policy.
for ckpt in selective full; do
  "$build/bench/lora_bench" --mode lora --base-dtype bf16 --checkpointing "$ckpt" $common | tee -a "$log"
done
# Full fine-tuning of the same model (f32 master weights, AdamW state, bf16 compute).
"$build/bench/lora_bench" --mode full --checkpointing selective $common | tee -a "$log"

python3 - "$log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"{'mode':<5} {'base':<5} {'ckpt':<10} {'trainable M':>11} {'tok/s':>7} {'peak RSS MiB':>12} {'counted MiB':>11}")
for r in rows:
    print(f"{r['mode']:<5} {r['base_dtype']:<5} {r['checkpointing']:<10} {r['trainable_M']:>11.2f} {r['tok_s_med']:>7.0f} "
          f"{r['peak_rss_MiB']:>12.0f} {r['counted_peak_MiB']:>11.0f}")
PY
