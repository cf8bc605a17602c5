#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, starts a local
# sparsepoold on a shared-memory region, runs the DeepSeek-V3.2-shaped demo against it,
# and stops the daemon. Extra arguments go to the demo (see tools/demo_main.cc).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh
bazel build //service:sparsepoold //tools:sparsepool_demo //tools:sparsepoolctl

source tools/local_daemon.sh
start_local_daemon sparsepool-demo 4GiB
echo "sparsepoold serving on $address (region $local_daemon_region, 4 GiB)"

bazel-bin/tools/sparsepool_demo --address="$address" "$@"
echo
bazel-bin/tools/sparsepoolctl --address="$address" stats
