#!/usr/bin/env bash
# The main job: set up, build, and train lenet5 on Fashion-MNIST with muppet-train, showing
# progress live. (When the service lands, this starts muppetd and a worker and submits a MuPPET
# job instead.) Takes about a minute on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bazel build //worker:muppet-train
report=$(mktemp --suffix=.json)
bazel-bin/worker/muppet-train --model=lenet5 --dataset=fashion-mnist --epochs=2 \
  --batch-size=64 --lr=0.01 --report="$report"
echo
echo "Report: $report"
/usr/bin/python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['model']} on {r['dataset']}: test accuracy {r['final']['test_accuracy']:.4f} "
      f"after {len(r['epochs'])} epochs, {r['final']['wall_seconds']:.1f} s wall")
PY
