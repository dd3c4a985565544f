#!/usr/bin/env bash
# Memory levers: peak memory against K (it should stay flat), against n_layer with and
# without checkpointing, and the step-time cost of full and selective checkpointing.
# Usage: bench/run_memory_bench.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
export OMP_NUM_THREADS=2
b="$build/bench/gpt_train_bench --heads 6 --embd 384 --vocab 50257 --seq 256 --mb 8 --steps 3 --warmup 1"
field() { /usr/bin/python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print(f\"{d['$1']:.${2:-1}f}\")"; }

echo "peak memory against K (GPT small, fp32, micro-batch 8)"
for k in 1 2 4 8; do
  j=$($b --layers 6 --accum $k)
  echo "  K=$k  counted peak $(echo "$j" | field counted_peak_MiB) MiB  peak RSS $(echo "$j" | field peak_rss_MiB) MiB  $(echo "$j" | field tok_s_med) tok/s"
done

echo "peak memory against n_layer (fp32, K=1)"
for l in 2 4 8 12; do
  line="  n_layer=$l"
  for policy in none selective full; do
    j=$($b --layers $l --checkpointing $policy)
    line="$line  $policy: $(echo "$j" | field counted_peak_MiB) MiB"
  done
  echo "$line"
done

echo "step-time overhead of checkpointing (fp32, K=1, 6 layers; median of 3 runs, each the median of 3 steps)"
base=""
for policy in none selective full; do
  t=$(for r in 1 2 3; do $b --layers 6 --checkpointing $policy | field step_s_med 4; done | sort -n | sed -n 2p)
  [ -z "$base" ] && base=$t
  echo "  $policy: $t s/step ($(/usr/bin/python3 -c "print(f'{($t / $base - 1) * 100:+.1f}%')") against none)"
done
