#!/bin/bash
# The GPU checks, as one script for a machine with NVIDIA GPUs: builds, runs every GPU test
# (kernels against the CPU reference, the NCCL backend) and prints their logs' results.
#   tests/gpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
bazel test -c opt --test_output=all //kernels/cuda:device_test //tests/gpu:all
