#!/usr/bin/env bash
# Installs the dependencies, then builds and runs every test: the Release suite, the same
# suite under AddressSanitizer + UndefinedBehaviorSanitizer (leak checks included, every
# report fatal), and a short run of each libFuzzer harness. Each part prints its time.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
timed() {
  local name="$1" start=$SECONDS
  shift
  "$@"
  echo "== $name: $((SECONDS - start)) s"
}

timed setup bash scripts/setup.sh

# ccache, where it is installed, with paths relative to the checkout: a second clone on the
# same machine reuses the objects of the first.
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$PWD"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}"
timed "release build" cmake --build build -j "$(nproc)"
timed "release suite" ctest --test-dir build --output-on-failure -j 1

# The sanitized suite: the same tests, built with -fsanitize=address,undefined at -O1.
# LeakSanitizer runs at every exit, so each CLI test's run of the binary is leak-checked.
cmake --preset sanitize "${launcher[@]}"
timed "sanitized build" cmake --build build-san -j "$(nproc)"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=0" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  timed "sanitized suite" ctest --test-dir build-san --output-on-failure -j 1

# 10 s a harness: a smoke run that each parser survives its corpus and some mutations of it.
timed "fuzz smoke" bash scripts/fuzz_smoke.sh 10
