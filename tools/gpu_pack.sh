#!/usr/bin/env bash
# Builds the GPU tests, the GPU benchmarks, the overlap example, the load tool and the daemon as static binaries for
# the device machine (which has none of Debian's libraries) and packs them, stripped and
# compressed, into .device/bin.tar.xz (the device tool carries at most 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
bash tools/static_relink.sh "$staging" //service:sparsepoold //bench:sparsepool_decode_step_bench \
  //bench:sparsepool_gpu_gather_bench //bench:sparsepool_gpu_overlap_example \
  //bench:sparsepool_serve_bench //bench:sparsepool_load //bench:sparsepool_rank_regions_bench \
  //tests:decode_session_test //tests:gpu_gather_test //tests:gpu_residency_test //tests:gpu_fetcher_test \
  //tests:device_fetch_test \
  //tests:bench_test
strip -s "$staging"/*
mkdir -p .device
tar cJf .device/bin.tar.xz -C "$staging" .
ls -la .device/bin.tar.xz
