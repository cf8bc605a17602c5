#!/usr/bin/env bash
# Runs the GPU tests and the GPU benchmark. On the device machine, with the binaries
# that tools/gpu_build.sh made here carried along (.device/bin):
#   device run: bash tools/gpu_check.sh        carry: [".device"]
# Logs go to $OUT when it is set.
set -uo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-.device/bin}"
logs="${OUT:-/tmp}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$bin/gpu_gather_test" 2>&1 | tee "$logs/gpu_test.log" | tail -6
test_status=${PIPESTATUS[0]}
"$bin/gpu_residency_test" 2>&1 | tee "$logs/gpu_residency_test.log" | tail -6
test_status=$((test_status || PIPESTATUS[0]))
"$bin/gpu_fetcher_test" 2>&1 | tee "$logs/gpu_fetcher_test.log" | tail -6
test_status=$((test_status || PIPESTATUS[0]))
"$bin/gpu_gather_bench" "$@" 2>&1 | tee "$logs/gpu_bench.log"
bench_status=${PIPESTATUS[0]}
"$bin/gpu_overlap_example" 2>&1 | tee "$logs/gpu_overlap.log"
bench_status=$((bench_status || PIPESTATUS[0]))
exit $((test_status || bench_status))
