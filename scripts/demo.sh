#!/usr/bin/env bash
# The main job. Today: set-up and the full build. The trainer (issue 3) makes it train lenet5 on
# Fashion-MNIST; the service (issue 6) makes it start muppetd and a worker, submit a MuPPET job
# and watch it live.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bazel build //...
echo
echo "muppet built. Training arrives with the trainer (muppet-train) and the service (muppetd)."
