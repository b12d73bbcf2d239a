#!/usr/bin/env bash
# Installs every system dependency of muppet from Debian's apt repositories.
# Idempotent: when every package is already present it only checks and exits (well under a second).
# Run as root on Debian 12 (bookworm). Nothing is downloaded from anywhere but apt, except the
# npm development tooling below (pinned by a lockfile; no Debian package has it).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # Build.
  bazel-bootstrap bazel-rules-java bazel-platforms g++ python3
  # RPC and serialisation.
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev grpc-proto
  # Numerics and collectives.
  libdnnl-dev libgloo-dev
  # Storage, metrics, TLS.
  libsqlite3-dev sqlite3 libpq-dev postgresql-15 prometheus-cpp-dev prometheus libssl-dev openssl
  zlib1g-dev
  # JSON reports; YAML job files.
  nlohmann-json3-dev libyaml-dev
  # Tests and benchmarks; the fuzz build (clang, libFuzzer and the sanitizer runtimes, OpenMP).
  googletest libgtest-dev libgmock-dev libbenchmark-dev clang-14 libclang-rt-14-dev libomp-14-dev
  # Benchmark peer: PyTorch on the CPU.
  python3-torch
  # Independent Python client for API tests.
  python3-grpcio python3-protobuf
  # Data.
  dataset-fashion-mnist
  # Lint for manifests and configs.
  yamllint
  # Rendering the dashboard's panels to PNG (tests/prometheus_test.py).
  python3-matplotlib
  # The container image (deploy/image): a Debian root filesystem, an OCI image, running it.
  mmdebstrap umoci podman runc
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

# Development tooling from npm (no Debian package): Grafana's schema types and typescript, for
# deploy/grafana/schema_test.py, and the Kubernetes schemas, for deploy/k8s/kustomize_test.py;
# pinned by deploy/tools/package-lock.json and
# reinstalled only when that lockfile changes.
install_npm_tools() {
  local dir=${MUPPET_NPM_DIR:-/opt/muppet/npm} lock=deploy/tools/package-lock.json
  if cmp -s "$lock" "$dir/package-lock.json" && [[ -x $dir/node_modules/.bin/tsc ]]; then
    return 0
  fi
  echo "setup: installing npm tooling into $dir"
  command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends npm >/dev/null
  mkdir -p "$dir" && cp deploy/tools/package.json "$lock" "$dir/" &&
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  install_npm_tools || { echo "setup: npm install failed" >&2; exit 1; }
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
install_npm_tools || { echo "setup: npm install failed" >&2; exit 1; }
echo "setup: done"
