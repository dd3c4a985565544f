#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) with clang into build-fuzz and runs each one for a
# short while on a scratch copy of its seed corpus. Exits non-zero when a harness finds a
# crash, a sanitizer report, an escaping exception, a leak or a timeout.
#   scripts/fuzz_smoke.sh [seconds per harness, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
build=build-fuzz
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DBIGBATCH_FUZZ=ON -DBUILD_TESTING=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_all

work="$(mktemp -d "${TMPDIR:-/tmp}/bigbatch-fuzz-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT
failed=()
for corpus in fuzz/corpus/*/; do
  name="$(basename "$corpus")"
  harness="$build/fuzz/fuzz_$name"
  [[ -x "$harness" ]] || { echo "fuzz_smoke: no harness for corpus $name" >&2; failed+=("$name"); continue; }
  # The committed corpus is only read: new inputs go to the scratch copy.
  mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
  cp "$corpus"* "$work/$name/corpus/"
  echo "== fuzz_$name (${seconds}s)"
  if ! (cd "$work/$name" && TMPDIR="$work/$name" OMP_NUM_THREADS=1 "$OLDPWD/$harness" -max_total_time="$seconds" \
          -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 -artifact_prefix=artifacts/ \
          corpus >"$work/$name/log" 2>&1); then
    failed+=("$name")
    tail -n 40 "$work/$name/log" >&2
    mkdir -p "$build/fuzz-findings/$name"
    cp "$work/$name/artifacts/"* "$build/fuzz-findings/$name/" 2>/dev/null || true
  fi
  grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units)" "$work/$name/log" | tail -n 1 || true
done

if ((${#failed[@]})); then
  echo "fuzz_smoke: findings in ${failed[*]} (inputs kept in $build/fuzz-findings)" >&2
  exit 1
fi
echo "fuzz_smoke: no findings"
