#!/usr/bin/env bash
# The RDMA-versus-CXL comparison on the embedded default: installs what is missing,
# builds, starts a local sparsepoold on a shared-memory region published over UCX
# (loopback: UCX_TLS=tcp unless set), and runs sparsepool-bench against it.
#   bash tools/compare.sh                 # quick preset: about a minute
#   bash tools/compare.sh --preset=full   # the whole sweep (8K-128K, batch 1-16)
# Further arguments go to sparsepool_bench (bench/sparsepool_bench_main.cc).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh
bazel build //service:sparsepoold //bench:sparsepool_bench >/dev/null 2>&1 ||
  bazel build //service:sparsepoold //bench:sparsepool_bench

region_size=2GiB
for arg in "$@"; do [[ "$arg" == --preset=full ]] && region_size=8GiB; done
export UCX_TLS="${UCX_TLS:-tcp}"
source tools/local_daemon.sh
start_local_daemon sparsepool-compare "$region_size" --ucx=true
echo "sparsepoold serving on $address (region $local_daemon_region, $region_size; UCX_TLS=$UCX_TLS)"

bazel-bin/bench/sparsepool_bench --address="$address" "$@"
