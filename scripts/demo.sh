#!/usr/bin/env bash
# The main job: set up, build, and train lenet5 on Fashion-MNIST with muppet-train under the
# MuPPET policy, showing progress and every precision switch live. Policy epochs of 40
# minibatches let the short run climb the ladder. (When the service lands, this starts muppetd
# and a worker and submits the job over gRPC instead.) About a minute on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bazel build //worker:muppet-train
report=$(mktemp --suffix=.json)
bazel-bin/worker/muppet-train --model=lenet5 --dataset=fashion-mnist --epochs=5 \
  --lr=0.05 --lr-schedule=constant --policy=muppet --policy-epoch-iterations=40 \
  --report="$report"
echo
echo "Report: $report"
/usr/bin/python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['model']} on {r['dataset']}, policy {r['policy']}: test accuracy "
      f"{r['final']['test_accuracy']:.4f} after {len(r['epochs'])} epochs, "
      f"{r['final']['wall_seconds']:.1f} s wall")
for s in r["final"]["switches"]:
    print(f"  switched {s['from_bits']} -> {s['to_bits']} bits during epoch {s['epoch'] + 1} "
          f"(after policy epoch {s['policy_epoch']})")
PY
