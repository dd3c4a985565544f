#!/usr/bin/env bash
# Installs what the PyTorch peer benchmarks need: Debian's python3-torch and OpenBLAS.
# Without libopenblas0, python3-torch's fp32 matmuls fall back to the reference BLAS of
# libblas3 (about 3 GFLOP/s here instead of 80+), which would make every ratio meaningless.
set -euo pipefail
need=()
for p in python3-torch libopenblas0-pthread; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
