#!/usr/bin/env bash
# Installs what bigbatch needs to build, test and run its default job on Debian 12 (as root,
# or through sudo when it is there). Safe to run again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libdnnl-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libfmt-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  fortunes-min fortunes          # the default job's corpus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
