#!/usr/bin/env bash
# The main job: set up, build, start a local coordinator (muppetd) and one worker
# (muppet-worker) on 127.0.0.1, submit a MuPPET job on Fashion-MNIST with muppetctl, and watch
# it live through its precision switches. Prints a summary and where the metrics are, then
# stops what it started. A few minutes on two cores (most of it the first build).
#
# The job: lenet5, 5 epochs, batch 128, constant learning rate 0.05, the MuPPET policy with its
# default ladder 8 -> 12 -> 14 -> 16 -> FP32 and thresholds, and policy epochs of 40
# minibatches so that a short run has enough windows to climb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bazel build //server:muppetd //worker:muppet-worker //client:muppetctl

run=$(mktemp -d /tmp/muppet-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# Plaintext gRPC (--insecure) on loopback for the demo only; a deployment serves TLS
# (--tls-cert/--tls-key, docs/SERVICE.md).
echo "demo: plaintext gRPC on 127.0.0.1 (--insecure); deployments use TLS and tokens"
bazel-bin/server/muppetd --insecure --db="$run/muppet.db" --listen=127.0.0.1:0 \
  --metrics-listen=127.0.0.1:0 --port-file="$run/ports" 2>"$run/muppetd.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$run/ports" ]] && break; sleep 0.1; done
read -r grpc_port metrics_port <"$run/ports"
server="127.0.0.1:$grpc_port"
echo "muppetd serving on $server, metrics on http://127.0.0.1:$metrics_port/metrics"

bazel-bin/worker/muppet-worker --insecure --server="$server" --name=demo-worker \
  --checkpoint-dir="$run/checkpoints" 2>"$run/worker.log" &
pids+=($!)
for _ in $(seq 100); do
  bazel-bin/client/muppetctl --insecure --server="$server" workers | grep -q demo-worker && break
  sleep 0.1
done
bazel-bin/client/muppetctl --insecure --server="$server" workers
echo

bazel-bin/client/muppetctl --insecure --server="$server" submit --name=demo --model=lenet5 \
  --dataset=fashion-mnist --epochs=5 --batch-size=128 --lr=0.05 --lr-schedule=constant \
  --policy=muppet --policy-epoch-iterations=40 --watch
job=$(bazel-bin/client/muppetctl --insecure --server="$server" list --limit=1 | awk 'NR == 2 {print $1}')

echo
bazel-bin/client/muppetctl --insecure --server="$server" list
echo
echo "Metrics (Prometheus text format) were served at http://127.0.0.1:$metrics_port/metrics;"
echo "a sample while the coordinator still runs:"
curl -s "http://127.0.0.1:$metrics_port/metrics" | grep -E '^muppet_(jobs|workers|epoch_duration_seconds_count|build_info)' | head -12 || true
echo
echo "Job $job's events, decisions and switches are stored in $run/muppet.db;"
echo "coordinator and worker logs (one structured line per event): $run/muppetd.log, $run/worker.log"
