#!/usr/bin/env bash
# Installs dependencies, builds everything and runs every test. Ends with the line
# "N passed, N failed" (", N skipped" when some skip) and exits non-zero on any failure.
# Incremental: a second run rebuilds and reruns only what changed.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# `bazel test` builds every target (not only tests), so a broken binary fails the run too.
bazel test //... --test_summary=short 2>&1 | tee "$log"
bazel_rc=${PIPESTATUS[0]}

/usr/bin/python3 scripts/summarize_tests.py "$log" "$(bazel info bazel-testlogs 2>/dev/null)"
summary_rc=$?
# Bazel exits 4 when no test targets exist and 1 when the build failed.
if [[ $bazel_rc -ne 0 || $summary_rc -ne 0 ]]; then
  exit 1
fi
