#!/usr/bin/env bash
# Installs dependencies, builds everything and runs every test: all of them, then the C++ unit
# tests of the core packages again under AddressSanitizer and UndefinedBehaviorSanitizer
# (--config=asan), then every fuzz target for a bounded time (scripts/fuzz.sh). Ends with the
# line "N passed, N failed" (", N skipped" when some skip) over all three and exits non-zero on
# any failure. Incremental: a second run rebuilds and reruns only what changed.
#   MUPPET_FUZZ_SECONDS  seconds per fuzz target (default 30; 0 skips fuzzing)
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# `bazel test` builds every target (not only tests), so a broken binary fails the run too.
bazel test //... --test_summary=short 2>&1 | tee "$work/all.log"
all_rc=${PIPESTATUS[0]}

# The packages whose code parses input or computes numerics; their C++ tests only. Left out:
# the multi-process Python tests, which would start sanitized binaries many times over, and the
# trainer's, which train for minutes without sanitizers and time out with them.
ASAN_TARGETS=(//base/... //kernels/... //proto/... //scheduler/... //server/... //client/...
  //worker/nn/... //worker/data/... //worker/train:checkpoint_test //worker/train:report_test
  //worker/train:checkpoint_fuzzer)
bazel test --config=asan --test_lang_filters=cc --build_tests_only --test_summary=short \
  "${ASAN_TARGETS[@]}" 2>&1 | tee "$work/asan.log"
asan_rc=${PIPESTATUS[0]}

fuzz_rc=0
runs=(asan "$work/asan.log" "$(bazel info --config=asan bazel-testlogs 2>/dev/null)")
if [[ ${MUPPET_FUZZ_SECONDS:-30} != 0 ]]; then
  bash scripts/fuzz.sh "${MUPPET_FUZZ_SECONDS:-30}" 2>&1 | tee "$work/fuzz.log"
  fuzz_rc=${PIPESTATUS[0]}
  runs+=(fuzz "$work/fuzz.log" -)
fi

/usr/bin/python3 scripts/summarize_tests.py "$work/all.log" \
  "$(bazel info bazel-testlogs 2>/dev/null)" "${runs[@]}"
summary_rc=$?
# Bazel exits 4 when no test targets exist and 1 when the build failed.
if [[ $all_rc -ne 0 || $asan_rc -ne 0 || $fuzz_rc -ne 0 || $summary_rc -ne 0 ]]; then
  exit 1
fi
