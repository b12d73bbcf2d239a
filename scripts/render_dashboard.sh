#!/usr/bin/env bash
# Draws the Grafana dashboard's panels into docs/dashboard/ from a real run: tests/prometheus_test.py
# (a coordinator, a worker, Debian's Prometheus, a job that switches precision), which evaluates
# every panel's queries and renders each panel to PNG (tests/render_panels.py).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/dashboard
bazel test //tests:prometheus_test --nocache_test_results \
  --test_env=MUPPET_DASHBOARD_PNG_DIR="$PWD/docs/dashboard"
ls -l docs/dashboard
