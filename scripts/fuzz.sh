#!/usr/bin/env bash
# Builds the fuzz targets (base/fuzzer.bzl) with clang, libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs each from its seed corpus for a bounded time.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
# Prints "<target> PASSED" or "<target> FAILED" per target (the lines scripts/test.sh counts),
# and for a failure the input that crashed, left in a temporary directory to add to the target's
# corpus once fixed. New inputs found are not kept: the corpus in the repository holds the seeds
# and the regressions only. Exits 1 if any target failed to build or found a crash.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}

# The fuzz build has a compiler of its own; in the main build's output base it would replace
# the gcc toolchain and rebuild everything each time either build ran. So it has an output base
# of its own, one per checkout as Bazel's are, and makes no bazel-* links: those in the
# workspace stay the main build's.
output_base=${MUPPET_FUZZ_OUTPUT_BASE:-$HOME/.cache/muppet-fuzz-$(pwd -P | md5sum | cut -c1-16)}
bazel_fuzz() {
  local command=$1
  shift
  bazel --output_base="$output_base" "$command" --symlink_prefix=/ "$@"
}

# Listed by the main build, which skips its own bazel-* links in the workspace.
targets=$(bazel query 'attr(tags, "\bfuzzer\b", tests(//...))' 2>/dev/null)
if [[ -z $targets ]]; then
  echo "fuzz: no fuzz targets found" >&2
  echo "//fuzz:build FAILED"
  exit 1
fi
if ! bazel_fuzz build --config=fuzz $targets; then
  for t in $targets; do echo "$t FAILED"; done
  exit 1
fi
bin=$(bazel_fuzz info --config=fuzz bazel-bin 2>/dev/null)
work=$(mktemp -d /tmp/muppet-fuzz.XXXXXX)
failed=0
for t in $targets; do
  package=${t#//}; package=${package%%:*}; name=${t##*:}
  dir="$work/$name"
  mkdir -p "$dir/new"
  # New inputs go to a scratch directory; crashes to $dir. -rss_limit_mb bounds a reader that
  # trusts a size it should not.
  if (cd "$dir" && TEST_TMPDIR="$dir" "$bin/$package/$name" new "$OLDPWD/$package/${name}_corpus" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        > "$dir/log" 2>&1); then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log" | grep -o '[0-9]*$')
    echo "$t PASSED (${runs:-?} runs in ${seconds} s)"
  else
    failed=1
    echo "$t FAILED"
    tail -40 "$dir/log"
    ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* 2>/dev/null | sed 's/^/  input: /'
  fi
done
[[ $failed -eq 0 ]] && rm -rf "$work"
exit $failed
