#!/usr/bin/env bash
# Proves that the build and the tests need no network: copies the work tree and runs
# `bazel test //...` inside a network namespace that has only a loopback interface, with a
# separate Bazel output root so that no cached repository hides a download. Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(mktemp -d) root=$(mktemp -d)
trap 'bazel --output_user_root="$root" shutdown >/dev/null 2>&1 || true; rm -rf "$tree" "$root"' EXIT
tar --exclude='./bazel-*' --exclude=./.git -cf - . | tar -C "$tree" -xf -
cd "$tree"
unshare --net bash -c "ip link set lo up && bazel --output_user_root='$root' test //..."
echo "offline build and tests: OK"
