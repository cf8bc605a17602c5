#!/usr/bin/env bash
# Installs the Debian packages sparsepool builds and runs with. Idempotent: installs
# only what is missing, and does nothing at all on a machine that has everything.
set -euo pipefail

packages=(
  bazel-bootstrap bazel-platforms bazel-rules-java bazel-rules-proto bazel-skylib
  g++ protobuf-compiler protobuf-compiler-grpc libgrpc++-dev libprotobuf-dev
  libabsl-dev libgtest-dev libgmock-dev
  libssl-dev openssl
  # libFuzzer (tools/fuzz.sh); gcc's AddressSanitizer comes with g++.
  clang libclang-rt-14-dev
  libnuma-dev numactl
  libucx-dev ucx-utils libibverbs-dev rdma-core ibverbs-providers librdmacm-dev
  gnuplot-nox
  # The Python package's tests and example (Debian's Python 3, pytest, numpy, CPU torch).
  python3 python3-pip python3-setuptools python3-pytest python3-numpy python3-torch
  # The Debian packages (deploy/debian): dpkg-deb, dpkg-shlibdeps, a soname for the
  # client library; pkg-config for the test that links against the installed client.
  dpkg-dev patchelf pkg-config
  # The pool cluster (cluster/): etcd itself and etcdctl, etcd's API definitions (the
  # .proto files the C++ client is generated from), iproute2 for the test hosts made of
  # network namespaces.
  etcd-server etcd-client golang-etcd-server-dev iproute2
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "bootstrap: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The CUDA toolkit is not a Debian package: GPU hosts carry it at /usr/local/cuda.
# Memory nodes have none, and need none: the build then leaves the GPU parts out
# (third_party/cuda/cuda_configure.bzl) and says so.
cuda_path="${SPARSEPOOL_CUDA_PATH:-/usr/local/cuda}"
if [[ ! -x "$cuda_path/bin/nvcc" ]]; then
  echo "bootstrap: no CUDA toolkit at $cuda_path (no bin/nvcc): the GPU parts (kernels, decode session," \
       "GPU tests and benchmarks) will be skipped; everything else builds. To build them, install the" \
       "toolkit there or set SPARSEPOOL_CUDA_PATH (docs/building.md)."
fi
