#!/usr/bin/env bash
# LoRA quality on a quantized base: a small Llama (4 x 256, 4 heads over 2 kv heads, MLP 704,
# byte tokenizer) is trained on the fortunes, then LoRA-fine-tuned on the Jargon File with the
# frozen base in bf16, q8_0 and q4_0: the same seed, data order and steps. Prints each run's
# final validation loss and its ratio to the bf16 base's (the acceptance line: q8_0 within
# 1%, q4_0 within 3%). Needs the fortunes and jargon-text packages.
# Usage: bench/run_qlora_quality.sh [BUILD_DIR] [BASE_STEPS] [LORA_STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
base_steps="${2:-400}"
lora_steps="${3:-200}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
quiet="train.checkpoint_every=0 sample.max_new_tokens=0 report=false train.log_every=100"

"$build/bigbatch" train model.type=llama model.n_layer=4 model.n_head=4 model.n_kv_head=2 model.n_embd=256 \
  model.intermediate_size=704 model.block_size=128 data.path=/usr/share/games/fortunes \
  train.micro_batch_size=16 train.steps="$base_steps" train.lr=0.003 train.precision=bf16 \
  train.eval_every="$base_steps" $quiet out_dir="$work/base" | tail -3

for base in bf16 q8_0 q4_0; do
  "$build/bigbatch" train model.init="$work/base" lora.base_dtype=$base lora.r=16 lora.alpha=32 \
    lora.target_modules="q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj" \
    data.path=/usr/share/doc/jargon-text/jargon.txt.gz train.micro_batch_size=16 train.steps="$lora_steps" \
    train.lr=0.003 train.precision=bf16 train.eval_every="$lora_steps" $quiet out_dir="$work/lora_$base" | tail -2
done

python3 - "$work" <<'PY'
import json, sys
def val(d):
    rows = [json.loads(l) for l in open(f"{sys.argv[1]}/{d}/metrics.jsonl")]
    return [r["val_loss"] for r in rows if "val_loss" in r][-1]
ref = val("lora_bf16")
print(f"{'base':<5} {'val loss':>9} {'vs bf16':>8}")
for b in ("bf16", "q8_0", "q4_0"):
    v = val(f"lora_{b}")
    print(f"{b:<5} {v:>9.4f} {100 * (v / ref - 1):>+7.2f}%")
PY
