#!/usr/bin/env bash
# GPT training: bigbatch against the PyTorch peer in the same run, one configuration per
# process, each repeated; prints a table with tokens/s (median and spread), MFU, peak RSS, the
# ratios, the matmul ceiling of the run and the wall time. 6 minutes on 2 cores of a Xeon
# with AMX (with the peer's first install; most of the rest is the peer's fp32 runs).
# Usage: bench/run_gpt_bench.sh [BUILD_DIR] [REPEATS]
#   SHAPES=gpt2 bench/run_gpt_bench.sh ...: the fine-tuning shapes instead, GPT-2 124M
#   (12 x 768) at T 1024, micro-batch 4: fp32, bf16, bf16 + selective, and bf16 + selective at
#   K = 8; each side times 1 step after a warm-up step (bigbatch 2 at K = 1). About 20 minutes.
#
# The peer runs as ../shared/peers/README.md says, as shipped and with OMP_WAIT_POLICY=PASSIVE,
# the better one compared. To keep the run short, both settings are tried once on the K = 1
# configuration of each precision (in the first repeat) and the better one is used for the
# rest of that precision; the peer's K = 4 runs time 1 step (4 micro-batches) after a warm-up
# step (its fp32 K = 4 step takes about 40 s here), its K = 1 runs 3. bigbatch times 4 steps.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup_peer.sh
build="${1:-build}"
repeats="${2:-3}"
peer="${PEER:-../shared/peers/torch_gpt_bench.py}"
export OMP_NUM_THREADS=2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$SECONDS

# name | precision | bigbatch flags | peer flags | bigbatch steps | peer steps
if [[ "${SHAPES:-small}" == gpt2 ]]; then
  g="--layers 12 --heads 12 --embd 768 --vocab 50257 --seq 1024 --mb 4"
  configs=(
    "fp32_k1|fp32|$g --accum 1|$g --accum 1|2|1"
    "bf16_k1|bf16|$g --accum 1 --precision bf16|$g --accum 1 --bf16|2|1"
    "bf16_sel_k1|bf16|$g --accum 1 --precision bf16 --checkpointing selective|$g --accum 1 --bf16 --ckpt|2|1"
    "bf16_sel_k8|bf16|$g --accum 8 --precision bf16 --checkpointing selective|$g --accum 8 --bf16 --ckpt|1|1"
  )
elif [[ "${SHAPES:-small}" == small ]]; then
  small="--layers 6 --heads 6 --embd 384 --vocab 50257 --seq 256 --mb 8"
  configs=(
    "fp32_k1|fp32|$small --accum 1|$small --accum 1|4|3"
    "fp32_k4|fp32|$small --accum 4|$small --accum 4|4|1"
    "bf16_k1|bf16|$small --accum 1 --precision bf16|$small --accum 1 --bf16|4|3"
    "bf16_sel_k4|bf16|$small --accum 4 --precision bf16 --checkpointing selective|$small --accum 4 --bf16 --ckpt|4|1"
  )
else
  echo "SHAPES must be small or gpt2, not '$SHAPES'" >&2
  exit 2
fi

# The peer's tokens/s in one JSON line.
tok_s() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["tok_s_med"])'; }
declare -A mode  # precision -> "default" or "passive"

for r in $(seq "$repeats"); do
  for entry in "${configs[@]}"; do
    IFS='|' read -r name precision ours theirs our_steps steps <<<"$entry"
    "$build/bench/gpt_train_bench" $ours --steps "$our_steps" --warmup 1 --tag "$name" >>"$out/ours.jsonl"
    run_peer() {  # $1: default or passive
      local env=()
      [[ "$1" == passive ]] && env=(OMP_WAIT_POLICY=PASSIVE)
      env "${env[@]}" /usr/bin/python3 "$peer" $theirs --steps "$steps" --warmup 1 --threads 2 --tag "$name"
    }
    if [[ -z "${mode[$precision]:-}" ]]; then
      d=$(run_peer default); p=$(run_peer passive)
      echo "$d" | tail -n 1 | sed 's/^{/{"mode": "default", /' >>"$out/peer.jsonl"
      echo "$p" | tail -n 1 | sed 's/^{/{"mode": "passive", /' >>"$out/peer.jsonl"
      mode[$precision]=$(/usr/bin/python3 -c "print('passive' if $(echo "$p" | tok_s) > $(echo "$d" | tok_s) else 'default')")
    else
      run_peer "${mode[$precision]}" | tail -n 1 | sed "s/^{/{\"mode\": \"${mode[$precision]}\", /" >>"$out/peer.jsonl"
    fi
  done
done

/usr/bin/python3 - "$out" "$((SECONDS - start))" <<'PY'
import json, sys, statistics, pathlib
d = pathlib.Path(sys.argv[1])
def load(f):
    rows = {}
    for line in open(d / f):
        line = line.strip()
        if line.startswith("{"):
            j = json.loads(line); rows.setdefault(j["tag"], []).append(j)
    return rows
ours, peer = load("ours.jsonl"), load("peer.jsonl")
def med(rows, k): return statistics.median(r[k] for r in rows)
def spread(rows, k): v = [r[k] for r in rows]; return f"{min(v):.0f}-{max(v):.0f}"
print(f"{'config':<12} {'bigbatch tok/s':>14} {'(min-max)':>11} {'MFU':>5} {'RSS MiB':>8} | {'torch tok/s':>11} {'(min-max)':>11} {'mode':>8} {'RSS MiB':>8} | {'speed x':>7} {'RSS x':>6}")
for tag in ours:
    o = ours[tag]
    tried = {r["mode"] for r in peer[tag]}
    best = max(tried, key=lambda m: med([r for r in peer[tag] if r["mode"] == m], "tok_s_med"))
    p = [r for r in peer[tag] if r["mode"] == best]
    t, rss = med(p, "tok_s_med"), med(p, "peak_rss_MiB")
    print(f"{tag:<12} {med(o,'tok_s_med'):>14.0f} {spread(o,'tok_s_med'):>11} {med(o,'mfu'):>5.2f} {med(o,'peak_rss_MiB'):>8.0f} | "
          f"{t:>11.0f} {spread(p,'tok_s_med'):>11} {best:>8} {rss:>8.0f} | {med(o,'tok_s_med')/t:>7.2f} {med(o,'peak_rss_MiB')/rss:>6.2f}")
for prec in ("fp32", "bf16"):
    ceil = [r["matmul_ceiling_gflops"] for rs in ours.values() for r in rs if r["precision"] == prec]
    if ceil:
        print(f"{prec} matmul ceiling measured in the bigbatch processes: {statistics.median(ceil):.0f} GFLOP/s "
              f"(median of {min(ceil):.0f}-{max(ceil):.0f}; MFU is against it)")
print(f"wall time {int(sys.argv[2]) // 60} min {int(sys.argv[2]) % 60} s")
PY
