#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything and runs the
# whole test suite (unit, fuzz and integration tests with real daemon processes).
# Ends with one "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh || exit 1

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Two cores: one local test job per core keeps the daemon-based tests from starving.
bazel test //... --test_summary=short --local_test_jobs=2 "$@" 2>&1 | tee "$log" \
  | grep -vE '^\s*$|linux-sandbox'
status=${PIPESTATUS[0]}

passed=$(grep -cE '^//\S+\s+(\(cached\) )?PASSED' "$log")
failed=$(grep -cE '^//\S+\s+.*(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)' "$log")
gpu_log=bazel-testlogs/tests/gpu_gather_test/test.log
if [[ -f "$gpu_log" ]] && grep -q "no CUDA device" "$gpu_log"; then
  echo "NOTE: //tests:gpu_gather_test compiled and ran, but skipped its GPU cases: no CUDA device" \
       "here. They run on a GPU machine: bash tools/gpu_build.sh, then bash tools/gpu_check.sh there."
fi
echo "sparsepool tests: ${passed} passed, ${failed} failed"
if ((status != 0 || failed != 0 || passed == 0)); then
  exit 1
fi
