#!/usr/bin/env bash
# Create/release and fetch rates of a pool cluster with 1, 2 and 3 nodes (issue 13):
# etcd and the daemons on this host (each node a 1 GiB /dev/shm region), one client
# process given etcd's endpoint, sparsepool_cluster_bench against each size in turn.
#   bash tools/cluster_bench.sh [BENCH FLAGS...]      (e.g. --threads=2 --seconds=3)
# One host shares its cores and memory among every node and the client: what it shows
# is that a cluster's placement and routing cost (an etcd read per create, a split per
# batch) is small, not how far more memory nodes scale a fleet.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh >/dev/null
bazel build //service:sparsepoold //bench:sparsepool_cluster_bench >/dev/null 2>&1 ||
  bazel build //service:sparsepoold //bench:sparsepool_cluster_bench
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f /dev/shm/sparsepool-cluster-bench-$$-*
  [[ -n "${KEEP_LOGS:-}" ]] && cp -r "$work" "$KEEP_LOGS"
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

etcd_port=$(free_port)
/usr/bin/etcd --name=bench --data-dir="$work/etcd" --listen-client-urls="http://127.0.0.1:$etcd_port" \
  --advertise-client-urls="http://127.0.0.1:$etcd_port" --listen-peer-urls="http://127.0.0.1:$(free_port)" \
  >"$work/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$etcd_port" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done

echo "sparsepool-cluster-bench: one client process, etcd and every node on this host ($(nproc) cores)"
echo "| nodes | create+release pairs/s | top-k entries fetched/s | rows per node | failures |"
echo "|---|---|---|---|---|"
for n in 1 2 3; do
  # Each size is a cluster of its own (another prefix), so placement sees only its nodes.
  prefix="/sparsepool-bench-$n"
  for id in $(seq 1 "$n"); do
    bazel-bin/service/sparsepoold --listen=127.0.0.1:0 --region="shm:sparsepool-cluster-bench-$$-$n-$id:1GiB" \
      --etcd="127.0.0.1:$etcd_port" --etcd_prefix="$prefix" --node_name="n$id" --node_id="$id" \
      --port_file="$work/n$n-$id.port" --reuse_grace=0s 2>"$work/n$n-$id.log" &
    pids+=($!)
  done
  for id in $(seq 1 "$n"); do
    for _ in $(seq 100); do [[ -s "$work/n$n-$id.port" ]] && break; sleep 0.1; done
  done
  bazel-bin/bench/sparsepool_cluster_bench --etcd="127.0.0.1:$etcd_port" --etcd_prefix="$prefix" "$@"
  for pid in "${pids[@]:1}"; do kill "$pid" 2>/dev/null || true; done
  wait "${pids[@]:1}" 2>/dev/null || true
  pids=("${pids[0]}")
  rm -f /dev/shm/sparsepool-cluster-bench-$$-*
done
