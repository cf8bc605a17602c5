#!/usr/bin/env bash
# sparsepool-bench with its GPU strategies, on the device machine: a static sparsepoold
# on a shared-memory region, published over UCX on loopback (tcp), and a static
# sparsepool_bench against it. Build both here first:
#   bash tools/static_relink.sh .device/bin //service:sparsepoold //bench:sparsepool_bench
#   device run: bash tools/gpu_compare.sh [REGION_SIZE] [BENCH FLAGS...]   carry: [".device"]
# Results go to $OUT/compare (or ./sparsepool-bench-out) and stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
region_size="${1:-16GiB}"
shift || true
export SPARSEPOOLD=.device/bin/sparsepoold
export UCX_TLS="${UCX_TLS:-tcp}"
source tools/local_daemon.sh
start_local_daemon sparsepool-gpu-compare "$region_size" --ucx=true
echo "sparsepoold serving on $address ($region_size shm region; UCX_TLS=$UCX_TLS)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
.device/bin/sparsepool_bench --address="$address" --out="${OUT:-.}/compare${COMPARE_TAG:-}" "$@"
