#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, starts a local
# sparsepoold on a shared-memory region, runs the DeepSeek-V3.2-shaped demo against it,
# and stops the daemon. Extra arguments go to the demo (see tools/demo_main.cc).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh
bazel build //service:sparsepoold //tools:sparsepool_demo //tools:sparsepoolctl

region="sparsepool-demo-$$"
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
[[ -s "$port_file" ]] || { cat "$log_file"; echo "demo: sparsepoold did not start" >&2; exit 1; }
address="127.0.0.1:$(cat "$port_file")"
echo "sparsepoold serving on $address (region /dev/shm/$region, 4 GiB)"

bazel-bin/tools/sparsepool_demo --address="$address" "$@"
echo
bazel-bin/tools/sparsepoolctl --address="$address" stats
