#!/usr/bin/env bash
# Installs what the PyTorch peer benchmarks need: Debian's python3-torch and OpenBLAS.
# Without libopenblas0, python3-torch's fp32 matmuls fall back to the reference BLAS of
# libblas3 (about 3 GFLOP/s here instead of 80+), which would make every ratio meaningless.
set -euo pipefail
bash "$(dirname "$0")/../scripts/apt_install.sh" python3-torch libopenblas0-pthread
