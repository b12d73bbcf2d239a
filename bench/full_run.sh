#!/usr/bin/env bash
# Full training runs, FP32 against MuPPET, with the same model, data, seed, batch and learning-
# rate schedule; prints one JSON line per run (with its switch epochs, and the epochs and training
# seconds spent at each precision) and one with the comparison.
#
#   bash bench/full_run.sh [epochs] [model]     (defaults: 20 resnet20)
#
# MUPPET_FLAGS adds muppet-train flags to the MuPPET run only (later flags override the common
# ones), e.g. MUPPET_FLAGS="--lr-schedule=precision-aware:5:0.1 --policy-epoch-iterations=117".
#
# Each run writes its muppet-train report to $OUT_DIR (default /tmp/muppet-full-run).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-20}
model=${2:-resnet20}
out=${OUT_DIR:-/tmp/muppet-full-run}
mkdir -p "$out"
bazel build -c opt //worker:muppet-train >&2
common=(--model="$model" --epochs="$epochs" --batch-size=128 --lr=0.1 --lr-schedule=cosine
        --weight-decay=5e-4 --augment --seed=0 --threads=0)
read -r -a muppet_flags <<< "${MUPPET_FLAGS:-}"
for policy in fp32 muppet; do
  extra=()
  if [[ $policy == muppet ]]; then extra=("${muppet_flags[@]}"); fi
  bazel-bin/worker/muppet-train "${common[@]}" --policy="$policy" "${extra[@]}" \
    --report="$out/$policy.json" > "$out/$policy.log"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
runs = {p: json.load(open(f"{out}/{p}.json")) for p in ("fp32", "muppet")}
for p, r in runs.items():
    epochs_at, seconds_at = {}, {}
    for e in r["epochs"]:
        epochs_at[e["precision_bits"]] = epochs_at.get(e["precision_bits"], 0) + 1
        seconds_at[e["precision_bits"]] = seconds_at.get(e["precision_bits"], 0) + e["seconds"]
    print(json.dumps({"bench": "full_run", "policy": p, "model": r["model"],
                      "epochs": len(r["epochs"]),
                      "test_accuracy": r["final"]["test_accuracy"],
                      "wall_seconds": r["final"]["wall_seconds"],
                      "train_seconds": sum(e["seconds"] for e in r["epochs"]),
                      "switch_epochs": r["final"]["switch_epochs"],
                      "epochs_per_precision": epochs_at,
                      "train_seconds_per_precision": seconds_at}))
f, m = runs["fp32"], runs["muppet"]
print(json.dumps({"bench": "full_run", "comparison": "muppet_vs_fp32",
                  "accuracy_difference_points":
                      100 * (m["final"]["test_accuracy"] - f["final"]["test_accuracy"]),
                  "speedup": f["final"]["wall_seconds"] / m["final"]["wall_seconds"]}))
PY
