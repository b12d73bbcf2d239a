#!/bin/bash
# The GPU checks, as one script for a machine with NVIDIA GPUs (sized to fit in about 8 minutes):
# builds, runs every GPU test (kernels against the CPU reference, the NCCL backend), then the GPU
# benchmarks, which validate their results before timing them. JSON lines go to stdout and, when
# $OUT is set (the device tool's output folder), to $OUT/gpu_bench.jsonl.
#   tests/gpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
bash scripts/setup.sh >/dev/null
bazel test -c opt --test_output=errors //kernels/cuda:all //tests/gpu:all
results=${OUT:-/tmp}/gpu_bench.jsonl
bazel run -c opt //bench:cuda_quantize | tee "$results"
bazel run -c opt //bench:cuda_gemm | tee -a "$results"
bazel run -c opt //bench:cuda_conv | tee -a "$results"
bazel run -c opt //bench:cuda_train | tee -a "$results"
