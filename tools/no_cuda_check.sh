#!/usr/bin/env bash
# What a memory node without the CUDA toolkit builds and tests (issue 16): the bootstrap
# and the whole suite again with the toolkit hidden (the build looks for it where there
# is none: third_party/cuda/cuda_configure.bzl), which must pass with the GPU targets
# skipped and say which. tools/test.sh runs it last; alone:
#   bash tools/no_cuda_check.sh
# The Bazel outputs are the CUDA-less ones afterwards; the next plain build puts the GPU
# parts back (only what depends on the toolkit is rebuilt).
set -uo pipefail
cd "$(dirname "$0")/.."
hidden=/nonexistent/cuda
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

if ! SPARSEPOOL_CUDA_PATH=$hidden bash tools/bootstrap.sh >"$log" 2>&1; then
  cat "$log"
  echo "no-CUDA build: FAILED (tools/bootstrap.sh stopped without the toolkit)"
  exit 1
fi
grep -q "no CUDA toolkit at $hidden" "$log" || { cat "$log"; echo "no-CUDA build: FAILED (bootstrap did not say the toolkit is missing)"; exit 1; }

start=$SECONDS
bazel test //... --repo_env=SPARSEPOOL_CUDA_PATH=$hidden --test_summary=short --local_test_jobs=2 "$@" >"$log" 2>&1
status=$?
passed=$(grep -cE '^//\S+\s+(\(cached\) )?PASSED' "$log")
failed=$(grep -cE '^//\S+\s+.*(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)' "$log")
skipped=$(grep -E '^//\S+\s+SKIPPED' "$log" | awk '{print $1}' | tr '\n' ' ')
if ((status != 0 || failed != 0 || passed == 0)); then
  grep -E '^//\S+\s+.*(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)|ERROR|error:' "$log" | head -30
  echo "no-CUDA build: FAILED (bazel test //... --repo_env=SPARSEPOOL_CUDA_PATH=$hidden)"
  exit 1
fi
if [[ -z "$skipped" ]]; then
  echo "no-CUDA build: FAILED (no GPU test was skipped: is the toolkit really hidden?)"
  exit 1
fi
echo "no-CUDA build: ${passed} test targets PASSED with the CUDA toolkit hidden in $((SECONDS - start)) s;" \
     "skipped, needing CUDA: ${skipped}"
