#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, starts a local
# sparsepoold on a shared-memory region (published over UCX on loopback too), runs the
# DeepSeek-V3.2-shaped demo against it, then the RDMA-versus-CXL comparison
# (sparsepool-bench, quick preset; tools/compare.sh runs it alone or the full sweep),
# and stops the daemon. Extra arguments go to the demo (see tools/demo_main.cc).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh
bazel build //service:sparsepoold //tools:sparsepool_demo //tools:sparsepoolctl //bench:sparsepool_bench

export UCX_TLS="${UCX_TLS:-tcp}"
source tools/local_daemon.sh
start_local_daemon sparsepool-demo 4GiB --ucx=true
echo "sparsepoold serving on $address (region $local_daemon_region, 4 GiB; UCX_TLS=$UCX_TLS)"

bazel-bin/tools/sparsepool_demo --address="$address" "$@"
echo
bazel-bin/tools/sparsepoolctl --address="$address" stats
echo
echo "== RDMA versus CXL: sparsepool-bench --preset=quick (UCX over $UCX_TLS on loopback) =="
bazel-bin/bench/sparsepool_bench --address="$address" --out=sparsepool-bench-out
