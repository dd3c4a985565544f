#!/usr/bin/env bash
# Data parallel against one process on the same cores: a GPT-2 (6 layers, 384 wide, 256
# tokens, 13.9M parameters, 53 MiB of gradients) at an effective batch of 16 sequences:
#   1 rank x 2 threads x K=4   against   2 ranks x 1 thread x K=2 (buckets overlapped or not,
#   and with ZeRO-1's sharded optimizer state),
# then the two ranks in two network namespaces over a veth pair shaped by netem (RATE, DELAY),
# where the link is slow enough that overlap and K matter. Each configuration runs REPEATS
# times, alternating; each line is one run's JSON (bench/dist_bench.cpp). Needs root for the
# namespaces; run from the repository root after building.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bench/dist_bench
repeats=${REPEATS:-3}
rate=${RATE:-1gbit}
delay=${DELAY:-1ms}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common="--steps ${STEPS:-4} --warmup 1 --mb 4"
mpi="mpirun --bind-to none -x OMP_NUM_THREADS"
hosts=$(mktemp)
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$hosts"
two_hosts="ip netns exec bbA mpirun --hostfile $hosts -np 2 --map-by node --bind-to none -x OMP_NUM_THREADS \
  --mca plm_rsh_agent '$PWD/scripts/netns_hosts.sh agent' --mca btl tcp,self \
  --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24"
trap 'bash scripts/netns_hosts.sh down; rm -f "$hosts"' EXIT
run() { echo "# $1"; shift; eval "$@" | grep '^{'; }
for i in $(seq "$repeats"); do
  [ "${SKIP_LOCAL:-0}" = 1 ] && break
  run "1 rank x 2 threads, K=4" OMP_NUM_THREADS=2 $bin $common --accum 4
  run "2 ranks x 1 thread, K=2, overlapped" OMP_NUM_THREADS=1 $mpi -np 2 $bin $common --accum 2
  run "2 ranks x 1 thread, K=2, after the backward" OMP_NUM_THREADS=1 $mpi -np 2 $bin $common --accum 2 --overlap 0
  run "2 ranks x 1 thread, K=2, overlapped, ZeRO-1" OMP_NUM_THREADS=1 $mpi -np 2 $bin $common --accum 2 --zero 1
done
bash scripts/netns_hosts.sh up "$rate" "$delay"
for i in $(seq "$repeats"); do
  for k in 1 2; do
    run "two hosts at $rate $delay, K=$k, overlapped" OMP_NUM_THREADS=1 $two_hosts $bin $common --accum $k
    run "two hosts at $rate $delay, K=$k, after the backward" OMP_NUM_THREADS=1 $two_hosts $bin $common --accum $k --overlap 0
  done
done
