#!/usr/bin/env bash
# GPT training: bigbatch against the PyTorch peer in the same run, one configuration per
# process, each repeated; prints a table with tokens/s, peak RSS and the ratios.
# Usage: bench/run_gpt_bench.sh [BUILD_DIR] [REPEATS]
# The peer runs as ../shared/peers/README.md says: as shipped and with
# OMP_WAIT_POLICY=PASSIVE, and the better of the two is compared.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup_peer.sh
build="${1:-build}"
repeats="${2:-3}"
peer="${PEER:-../shared/peers/torch_gpt_bench.py}"
export OMP_NUM_THREADS=2
small="--layers 6 --heads 6 --embd 384 --vocab 50257 --seq 256 --mb 8"
out=$(mktemp -d)

# name | bigbatch flags | peer flags
configs=(
  "fp32_k1|$small --accum 1|$small --accum 1"
  "fp32_k4|$small --accum 4|$small --accum 4"
  "bf16_k1|$small --accum 1 --precision bf16|$small --accum 1 --bf16"
  "bf16_sel_k4|$small --accum 4 --precision bf16 --checkpointing selective|$small --accum 4 --bf16 --ckpt"
)

for entry in "${configs[@]}"; do
  IFS='|' read -r name ours theirs <<<"$entry"
  for r in $(seq "$repeats"); do
    "$build/bench/gpt_train_bench" $ours --steps 4 --warmup 1 --tag "$name" >>"$out/ours.jsonl"
    /usr/bin/python3 "$peer" $theirs --steps 4 --warmup 1 --threads 2 --tag "$name" >>"$out/peer_default.jsonl"
    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$peer" $theirs --steps 4 --warmup 1 --threads 2 --tag "$name" \
      >>"$out/peer_passive.jsonl"
  done
done

/usr/bin/python3 - "$out" <<'PY'
import json, sys, statistics, pathlib
d = pathlib.Path(sys.argv[1])
def load(f):
    rows = {}
    for line in open(d / f):
        line = line.strip()
        if line.startswith("{"):
            j = json.loads(line); rows.setdefault(j["tag"], []).append(j)
    return rows
ours, pd, pp = load("ours.jsonl"), load("peer_default.jsonl"), load("peer_passive.jsonl")
def med(rows, k): return statistics.median(r[k] for r in rows)
def spread(rows, k): v = [r[k] for r in rows]; return (max(v) - min(v)) / statistics.median(v) * 100
print(f"{'config':<12} {'bigbatch tok/s':>15} {'spread':>7} {'MFU':>5} {'RSS MiB':>8} | {'torch tok/s (dflt/passive)':>27} {'RSS MiB':>8} | {'speed x':>7} {'RSS x':>6}")
for tag in ours:
    o = ours[tag]
    best_peer = max((pd.get(tag, []), pp.get(tag, [])), key=lambda rows: med(rows, "tok_s_med") if rows else 0)
    t = med(best_peer, "tok_s_med"); rss = med(best_peer, "peak_rss_MiB")
    print(f"{tag:<12} {med(o,'tok_s_med'):>15.0f} {spread(o,'tok_s_med'):>6.1f}% {med(o,'mfu'):>5.2f} {med(o,'peak_rss_MiB'):>8.0f} | "
          f"{med(pd[tag],'tok_s_med'):>13.0f} / {med(pp[tag],'tok_s_med'):>9.0f} {rss:>9.0f} | "
          f"{med(o,'tok_s_med')/t:>7.2f} {med(o,'peak_rss_MiB')/rss:>6.2f}")
print(f"matmul ceiling measured in the bigbatch processes: {statistics.median(r['matmul_ceiling_gflops'] for rs in ours.values() for r in rs):.0f} GFLOP/s")
PY
