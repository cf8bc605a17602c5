#!/usr/bin/env bash
# Runs the foundation benchmarks against a local sparsepoold on a 4 GiB shared-memory
# region: the CPU top-k gather against memcpy, CPU writes per copy-thread count, and
# control-plane operations per second.
#   bash tools/bench.sh
# On the device machine, with static binaries built here
# (bash tools/static_relink.sh .device/bin //service:sparsepoold
#  //bench:sparsepool_gather_bench //bench:sparsepool_write_bench
#  //bench:sparsepool_control_plane_bench):
#   device run: BIN=.device/bin bash tools/bench.sh        carry: [".device"]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${BIN:-}" ]]; then
  export SPARSEPOOLD="$BIN/sparsepoold"
  gather_bench="$BIN/sparsepool_gather_bench"
  write_bench="$BIN/sparsepool_write_bench"
  control_plane_bench="$BIN/sparsepool_control_plane_bench"
else
  bash tools/bootstrap.sh
  bazel build //service:sparsepoold //bench:all >/dev/null
  gather_bench=bazel-bin/bench/sparsepool_gather_bench
  write_bench=bazel-bin/bench/sparsepool_write_bench
  control_plane_bench=bazel-bin/bench/sparsepool_control_plane_bench
fi

source tools/local_daemon.sh
start_local_daemon sparsepool-bench 4GiB

echo "== CPU top-k gather ($(nproc) cores: $(lscpu | sed -n 's/^Model name: *//p')) =="
# One thread, then 2, 4 and 8 copy threads where the machine has the cores.
threads=1
for t in 2 4 8; do (( t <= $(nproc) )) && threads+=",$t"; done
"$gather_bench" --address="$address" --threads="$threads"
echo
echo "== CPU writes (WriteEntries) =="
"$write_bench" --address="$address" --threads="$threads"
echo
echo "== control plane =="
"$control_plane_bench" --address="$address" --threads=4 --seconds=5
"$control_plane_bench" --address="$address" --threads=4 --seconds=5 --tokens=64
