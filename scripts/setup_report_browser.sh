#!/usr/bin/env bash
# Installs playwright-core into tests/report/node unless it is there: the report test
# (tests/cli/test_cli_report.cpp, through tests/report/check_report.js) drives Debian's
# /usr/bin/chromium with it. playwright-core downloads no browser of its own.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/report/node"
if [ -f "$dir/node_modules/playwright-core/package.json" ]; then exit 0; fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund >/dev/null
