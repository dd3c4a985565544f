#!/usr/bin/env bash
# CNN training throughput: bigbatch (bench/cnn_train_bench) against the PyTorch peer
# (../shared/peers/torch_cnn_bench.py, beside the checkout) in the same run, fp32 and bf16, batch 128.
# The peer runs as shipped and with OMP_WAIT_POLICY=PASSIVE, NCHW and --channels_last, and
# the best of those settings is the figure we compare to (see ../shared/peers/README.md).
# Usage: bench/run_cnn_bench.sh [BUILD_DIR] [ITERS]   (prints one JSON line a run, then ratios)
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup_peer.sh
build="${1:-build}"
iters="${2:-30}"
peer="${PEER_CNN_BENCH:-../shared/peers/torch_cnn_bench.py}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

best() {  # best img_s_best among the lines of $log whose tag starts with $1
  python3 -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
v=[r for r in rows if r.get("tag","").startswith(sys.argv[2])]
b=max(v,key=lambda r:r["img_s_best"]); print(b["img_s_best"], b.get("peak_rss_MiB"), b.get("tag"))' "$log" "$1"
}

for prec in fp32 bf16; do
  "$build/bench/cnn_train_bench" --bs 128 --iters "$iters" --precision "$prec" --tag "ours-$prec" | tee -a "$log"
  flag=""; [ "$prec" = bf16 ] && flag="--bf16"
  for layout in "" "--channels_last"; do
    for policy in default PASSIVE; do
      tag="peer-$prec-${layout:+cl}${layout:-nchw}-$policy"
      if [ "$policy" = PASSIVE ]; then
        OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$peer" --bs 128 --iters "$iters" --threads 2 $flag $layout --tag "$tag" | tee -a "$log"
      else
        /usr/bin/python3 "$peer" --bs 128 --iters "$iters" --threads 2 $flag $layout --tag "$tag" | tee -a "$log"
      fi
    done
  done
done

echo "--- images/s (best window), peak RSS MiB"
for prec in fp32 bf16; do
  read -r ours ours_rss _ < <(best "ours-$prec")
  read -r theirs theirs_rss peer_tag < <(best "peer-$prec")
  python3 -c "import sys; o,t,orss,trss=map(float,sys.argv[1:5]); print(f'$prec: bigbatch {o:.0f} img/s ({orss:.0f} MiB), PyTorch best {t:.0f} img/s ({trss:.0f} MiB, $peer_tag): ratio {o/t:.2f}x')" \
    "$ours" "$theirs" "$ours_rss" "$theirs_rss"
done
