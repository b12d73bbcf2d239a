#!/usr/bin/env bash
# Installs every system dependency of muppet from Debian's apt repositories.
# Idempotent: when every package is already present it only checks and exits (well under a second).
# Run as root on Debian 12 (bookworm). Nothing is downloaded from anywhere but apt.
set -euo pipefail

PACKAGES=(
  # Build.
  bazel-bootstrap bazel-rules-java bazel-platforms g++ python3
  # RPC and serialisation.
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev grpc-proto
  # Numerics and collectives.
  libdnnl-dev libgloo-dev
  # Storage, metrics, TLS.
  libsqlite3-dev sqlite3 prometheus-cpp-dev prometheus libssl-dev openssl zlib1g-dev
  # JSON reports; YAML job files.
  nlohmann-json3-dev libyaml-dev
  # Tests and benchmarks.
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  # Benchmark peer: PyTorch on the CPU.
  python3-torch
  # Independent Python client for API tests.
  python3-grpcio python3-protobuf
  # Data.
  dataset-fashion-mnist
  # Lint for manifests and configs.
  yamllint
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages (${missing[*]}); run this script as root" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
