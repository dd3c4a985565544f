#!/usr/bin/env bash
# Two "hosts" on this machine for MPI over TCP: network namespaces bbA (10.77.0.1) and bbB
# (10.77.0.2) joined by a veth pair. `up` makes them (optionally with a slow link: netem
# RATE DELAY, e.g. `up 1gbit 1ms`), `down` removes them, `agent` is Open MPI's launch agent
# (plm_rsh_agent) that runs a command "on" a host by entering its namespace.
set -euo pipefail
case "${1:-}" in
  up)
    "$0" down 2>/dev/null || true
    ip netns add bbA
    ip netns add bbB
    ip link add bbvethA type veth peer name bbvethB
    ip link set bbvethA netns bbA
    ip link set bbvethB netns bbB
    ip -n bbA addr add 10.77.0.1/24 dev bbvethA
    ip -n bbB addr add 10.77.0.2/24 dev bbvethB
    for ns in bbA bbB; do
      ip -n "$ns" link set lo up
    done
    ip -n bbA link set bbvethA up
    ip -n bbB link set bbvethB up
    if [ -n "${2:-}" ]; then
      # Both directions: each end shapes what it sends. Kernels without sch_netem still
      # have tbf, which limits the rate but adds no delay.
      for end in A B; do
        if ! ip netns exec "bb$end" tc qdisc add dev "bbveth$end" root netem rate "$2" delay "${3:-0ms}" 2>/dev/null; then
          ip netns exec "bb$end" tc qdisc add dev "bbveth$end" root tbf rate "$2" burst 256kb latency 50ms
          if [ "$end" = A ]; then
            echo "netns_hosts.sh: this kernel has no netem; the link is limited to $2 by tbf, with no added delay" >&2
          fi
        fi
      done
    fi
    ;;
  down)
    ip netns del bbA 2>/dev/null || true
    ip netns del bbB 2>/dev/null || true
    ;;
  agent)
    # Called by mpirun as: agent HOST COMMAND... (a command line for the remote shell).
    shift
    host="$1"
    shift
    case "$host" in
      10.77.0.1) ns=bbA ;;
      10.77.0.2) ns=bbB ;;
      *) echo "netns_hosts.sh agent: unknown host $host" >&2; exit 1 ;;
    esac
    exec ip netns exec "$ns" sh -c "$*"
    ;;
  *)
    echo "usage: $0 up [RATE DELAY] | down | agent HOST COMMAND..." >&2
    exit 2
    ;;
esac
