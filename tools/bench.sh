#!/usr/bin/env bash
# Runs the foundation benchmarks against a local sparsepoold on a 4 GiB shared-memory
# region: the CPU top-k gather against memcpy, and control-plane operations per second.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh
bazel build //service:sparsepoold //bench:all >/dev/null

region="sparsepool-bench-$$"
port_file="$(mktemp)"
log_file="$(mktemp)"
cleanup() {
  [[ -n "${daemon_pid:-}" ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  rm -f "/dev/shm/$region" "$port_file" "$log_file"
}
trap cleanup EXIT

bazel-bin/service/sparsepoold --listen=127.0.0.1:0 --region="shm:$region:4GiB" \
  --port_file="$port_file" 2>"$log_file" &
daemon_pid=$!
for _ in $(seq 100); do [[ -s "$port_file" ]] && break; sleep 0.1; done
[[ -s "$port_file" ]] || { cat "$log_file"; echo "bench: sparsepoold did not start" >&2; exit 1; }
address="127.0.0.1:$(cat "$port_file")"

echo "== CPU top-k gather (commit $(git rev-parse --short HEAD), $(nproc) cores) =="
bazel-bin/bench/sparsepool_gather_bench --address="$address"
echo
echo "== control plane =="
bazel-bin/bench/sparsepool_control_plane_bench --address="$address" --threads=4 --seconds=5
bazel-bin/bench/sparsepool_control_plane_bench --address="$address" --threads=4 --seconds=5 --tokens=64
