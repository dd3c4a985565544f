#!/usr/bin/env bash
# LoRA on a frozen base in fp32, bf16, q8_0 and q4_0 at TinyLlama-1.1B's shapes (22 layers,
# 2048 wide, 32 heads over 4 kv heads, MLP 5632, vocabulary 32000; random weights written once
# as a bf16 Hugging Face folder), the same effective batch for each: tokens/s, peak RSS and
# counted peak by category (the quantized weights in their own). Each run loads the folder
# as a user's run does (`--init`), one configuration per process so each peak RSS is its own.
# Usage: bench/run_qlora_bench.sh [BUILD_DIR] [STEPS] [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
steps="${2:-3}"
model="${3:-/tmp/bb_tinyllama_random}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
[ -f "$model/config.json" ] || "$build/bench/lora_bench" --model llama --seq 256 --write-model "$model"
common="--model llama --init $model --mb 1 --accum 4 --seq 256 --steps $steps --warmup 1 --precision bf16 --checkpointing selective"
for base in fp32 bf16 q8_0 q4_0; do
  "$build/bench/lora_bench" --mode lora --base-dtype $base $common | tee -a "$log"
done

python3 - "$log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"{'base':<5} {'tok/s':>7} {'step s (min-max)':>18} {'peak RSS MiB':>12} {'counted MiB':>11} {'params MiB':>10} {'quantized MiB':>13}")
for r in rows:
    c = r["peak_by_category_MiB"]
    print(f"{r['base_dtype']:<5} {r['tok_s_med']:>7.1f} {r['step_s_med']:>6.2f} ({r['step_s_min']:.2f}-{r['step_s_max']:.2f}) "
          f"{r['peak_rss_MiB']:>12.0f} {r['counted_peak_MiB']:>11.0f} {c['parameters']:>10.0f} {c['quantized weights']:>13.0f}")
PY
