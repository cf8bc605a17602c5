#!/usr/bin/env bash
# Runs the foundation benchmarks against a local sparsepoold on a 4 GiB shared-memory
# region: the CPU top-k gather against memcpy, and control-plane operations per second.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh
bazel build //service:sparsepoold //bench:all >/dev/null

source tools/local_daemon.sh
start_local_daemon sparsepool-bench 4GiB

echo "== CPU top-k gather (commit $(git rev-parse --short HEAD), $(nproc) cores) =="
bazel-bin/bench/sparsepool_gather_bench --address="$address"
echo
echo "== control plane =="
bazel-bin/bench/sparsepool_control_plane_bench --address="$address" --threads=4 --seconds=5
bazel-bin/bench/sparsepool_control_plane_bench --address="$address" --threads=4 --seconds=5 --tokens=64
