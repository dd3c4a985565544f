#!/usr/bin/env bash
# Packed against padded rows on instruction data with a realistic length spread, at GPT-2
# 124M's shape and a small Llama's, bf16 compute, effective batch 8 rows of 512 tokens (micro-
# batches of 4, K = 2). Each configuration runs REPEATS times, one process each (each peak RSS
# its own), alternating modes so drift on a shared machine falls on both; prints one JSON line
# per run, then the medians (and spread) with packed/padded ratios.
# Usage: bench/run_packing_bench.sh [BUILD_DIR] [REPEATS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
repeats="${2:-3}"
steps="${3:-3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
common="--seq 512 --mb 4 --accum 2 --steps $steps --warmup 1 --precision bf16 --examples 2000"

for model in gpt2 llama; do
  for ((i = 0; i < repeats; ++i)); do
    for mode in padded packed; do
      "$build/bench/packing_bench" --model "$model" --mode "$mode" $common | tee -a "$log"
    done
  done
done

python3 - "$log" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"{'model':<6} {'mode':<7} {'trained tok/s':>14} {'(min-max)':>13} {'padding':>8} {'peak RSS MiB':>12} {'packed/padded':>13}")
for model in ("gpt2", "llama"):
    med = {}
    for mode in ("padded", "packed"):
        rs = [r for r in rows if r["model"] == model and r["mode"] == mode]
        if not rs:
            continue
        t = [r["trained_tok_s"] for r in rs]
        med[mode] = statistics.median(t)
        ratio = f"{med[mode] / med['padded']:.2f}x" if mode == "packed" and "padded" in med else ""
        print(f"{model:<6} {mode:<7} {med[mode]:>14.0f} {min(t):>6.0f}-{max(t):<6.0f} {100 * rs[0]['padding_share']:>7.1f}% "
              f"{max(r['peak_rss_MiB'] for r in rs):>12.0f} {ratio:>13}")
PY
