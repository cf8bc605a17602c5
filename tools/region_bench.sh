#!/usr/bin/env bash
# The CPU gather and write benchmarks on three regions in turn, in one call, so that they compare
# on the same host: shm in /dev/shm (4 KiB pages), shm on a tmpfs mounted with
# huge=always (transparent 2 MiB pages, no reservation), and hugetlbfs (reserved 2 MiB
# pages). Needs root: it reserves 2,200 huge pages and mounts the two file systems for
# the run, and puts everything back after.
#   bash tools/region_bench.sh [ROUNDS]       (here, after building)
#   device run: BIN=.device/bin bash tools/region_bench.sh    carry: [".device"]
#   (bash tools/static_relink.sh .device/bin //service:sparsepoold //bench:sparsepool_gather_bench
#    //bench:sparsepool_write_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
if [[ -n "${BIN:-}" ]]; then
  export SPARSEPOOLD="$BIN/sparsepoold"
  gather_bench="$BIN/sparsepool_gather_bench" write_bench="$BIN/sparsepool_write_bench"
else
  bazel build //service:sparsepoold //bench:sparsepool_gather_bench //bench:sparsepool_write_bench >/dev/null 2>&1
  gather_bench=bazel-bin/bench/sparsepool_gather_bench
  write_bench=bazel-bin/bench/sparsepool_write_bench
fi
source tools/local_daemon.sh
[[ $EUID -eq 0 ]] || { echo "needs root (huge pages, mount)" >&2; exit 1; }

threads=1
for t in 2 4 8; do (( t <= $(nproc) )) && threads+=",$t"; done
pages_before=$(cat /proc/sys/vm/nr_hugepages)
mount_dir=$(mktemp -d /tmp/sparsepool-gather-hugetlbfs.XXXXXX)
thp_dir=$(mktemp -d /tmp/sparsepool-gather-thp.XXXXXX)
cleanup() {
  stop_local_daemon
  rm -f "$mount_dir/pool" "/dev/shm/sparsepool-gather-$$"
  umount "$mount_dir" 2>/dev/null; rmdir "$mount_dir" 2>/dev/null
  rm -f "$thp_dir/pool"; umount "$thp_dir" 2>/dev/null; rmdir "$thp_dir" 2>/dev/null
  echo "$pages_before" >/proc/sys/vm/nr_hugepages
}
trap cleanup EXIT
echo $((pages_before + 2200)) >/proc/sys/vm/nr_hugepages
mount -t hugetlbfs -o pagesize=2M none "$mount_dir"
mount -t tmpfs -o huge=always,size=5g none "$thp_dir"

run() {  # region spec
  start_daemon_on "$1"
  echo "== region $1"
  "$gather_bench" --address="$address" --threads="$threads" --reps=200 | grep -E '^\| (threads|[0-9])'
  "$write_bench" --address="$address" --threads="$threads" --rounds=2 | grep -E '^\| (copy|[0-9])'
  stop_local_daemon
}
echo "$(nproc) cores: $(lscpu | sed -n 's/^Model name: *//p'); $(grep HugePages_Free /proc/meminfo)"
for _ in $(seq "$rounds"); do
  run "shm:/dev/shm/sparsepool-gather-$$:4GiB"; rm -f "/dev/shm/sparsepool-gather-$$"
  run "shm:$thp_dir/pool:4GiB"
  echo "   (ShmemHugePages after that run: $(awk '/^ShmemHugePages/ {print $2, $3}' /proc/meminfo))"
  rm -f "$thp_dir/pool"
  run "hugetlbfs:$mount_dir/pool:4GiB"; rm -f "$mount_dir/pool"
done
