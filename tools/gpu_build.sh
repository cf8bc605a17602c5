#!/usr/bin/env bash
# Builds the GPU test and benchmark as self-contained binaries for the device machine,
# which has CUDA but none of Debian's libraries: libstdc++, Abseil, GoogleTest and the
# CUDA runtime are linked statically; only glibc and the driver are taken from there.
#   bash tools/gpu_build.sh [OUTDIR]     (default .device/bin, ignored by git)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.device/bin}"
obj="$(mktemp -d)"
trap 'rm -rf "$obj"' EXIT
mkdir -p "$out"

nvcc=/usr/local/cuda/bin/nvcc
arch="-gencode=arch=compute_90,code=sm_90"
cxx_flags=(-O2 -std=c++17 -I. -I/usr/local/cuda/include)
libs=/usr/lib/x86_64-linux-gnu

"$nvcc" -O3 -std=c++17 "$arch" -I. -c kernels/topk_gather_kernels.cu -o "$obj/kernels.o" &
"$nvcc" -O3 -std=c++17 "$arch" -I. -c kernels/residency_kernels.cu -o "$obj/residency_kernels.o" &
g++ "${cxx_flags[@]}" -c kernels/residency_cache.cc -o "$obj/residency_cache.o" &
g++ "${cxx_flags[@]}" -c kernels/residency_model.cc -o "$obj/residency_model.o" &
g++ "${cxx_flags[@]}" -c tests/gpu_residency_test.cc -o "$obj/residency_test.o" &
wait
# The client's GPU path and the real region store its test formats regions with.
fetcher_sources=(client/gpu_fetcher.cc service/region_store.cc service/granule_allocator.cc
  common/crc32c.cc common/region_format.cc common/layout.cc common/units.cc
  transport/data_plane.cc transport/cxl/region_mapping.cc transport/cxl/region_spec.cc
  transport/cxl/cpu_gather.cc transport/cxl/cxl_data_plane.cc common/sequence_liveness.cc
  common/worker_pool.cc
  tests/gpu_fetcher_test.cc)
for f in "${fetcher_sources[@]}"; do
  g++ "${cxx_flags[@]}" -march=x86-64-v2 -c "$f" -o "$obj/fetcher_$(echo "$f" | tr / _).o" &
done
"$nvcc" -O3 -std=c++17 "$arch" -I. -c bench/gpu_gather_bench.cu -o "$obj/bench.o" &
"$nvcc" -O3 -std=c++17 "$arch" -I. -c bench/gpu_overlap_example.cu -o "$obj/overlap.o" &
g++ "${cxx_flags[@]}" -c kernels/topk_gather.cc -o "$obj/launcher.o" &
g++ "${cxx_flags[@]}" -c kernels/cuda_pointer.cc -o "$obj/cuda_pointer.o" &
g++ "${cxx_flags[@]}" -c tests/gpu_gather_test.cc -o "$obj/test.o" &
wait

link() {
  g++ -o "$1" "${@:2}" "$obj/launcher.o" "$obj/cuda_pointer.o" "$obj/kernels.o" "$obj/residency_cache.o" \
    "$obj/residency_kernels.o" "$obj/residency_model.o" -static-libstdc++ -static-libgcc \
    -Wl,--start-group "$libs"/libabsl_*.a "$libs/libgmock.a" "$libs/libgtest.a" -Wl,--end-group \
    /usr/local/cuda/lib64/libcudart_static.a -ldl -lrt -lpthread
}
link "$out/gpu_gather_test" "$obj/test.o" "$libs/libgtest_main.a"
link "$out/gpu_residency_test" "$obj/residency_test.o" "$libs/libgtest_main.a"
link "$out/gpu_fetcher_test" "$obj"/fetcher_*.o "$libs/libgtest_main.a" "$libs/libnuma.a"
link "$out/gpu_gather_bench" "$obj/bench.o"
link "$out/gpu_overlap_example" "$obj/overlap.o"
ls -la "$out"
