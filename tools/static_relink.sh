#!/usr/bin/env bash
# Relinks Bazel-built binaries (and tests) with every Debian library (gRPC, Protobuf, Abseil, UCX,
# libnuma, libibverbs, OpenSSL, ...) and libstdc++ static, so that they run on the
# device machine, which has glibc and the CUDA driver but none of Debian's libraries.
# Bazel's own link command (its -2.params file) is reused with the -l flags replaced.
#   bash tools/static_relink.sh OUTDIR //pkg:binary...
# UCX loads its transport modules (ib, cma, rdmacm) from Debian's directory, absent
# there; its built-in transports (tcp, shared memory, self) work without them.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "$1")"
shift
mkdir -p "$out"
bazel build "$@" >/dev/null 2>&1 || bazel build "$@"
execroot="$(bazel info execution_root 2>/dev/null)"
libs=/usr/lib/x86_64-linux-gnu
static_group=(-Wl,--start-group
  "$libs/libgrpc++.a" "$libs/libgrpc.a" "$libs/libgpr.a" "$libs/libupb.a" "$libs/libaddress_sorting.a"
  "$libs/libcares.a" "$libs/libre2.a" "$libs/libssl.a" "$libs/libcrypto.a" "$libs/libz.a"
  "$libs/libprotobuf.a" "$libs"/libabsl_*.a
  "$libs/libnuma.a" "$libs/libibverbs.a" "$libs/libnl-route-3.a" "$libs/libnl-3.a"
  # Tests (GoogleTest's main is taken only by binaries that have none of their own).
  "$libs/libgmock.a" "$libs/libgtest.a" "$libs/libgtest_main.a"
  # UCX registers its transports and reads its options in constructors that nothing
  # references: take every object of its archives.
  -Wl,--whole-archive "$libs/libucp.a" "$libs/libuct.a" "$libs/libucs.a" "$libs/libucm.a" -Wl,--no-whole-archive
  -Wl,--end-group)
for target in "$@"; do
  package="${target#//}"; package="${package%%:*}"
  name="${target##*:}"
  params="$execroot/bazel-out/k8-fastbuild/bin/$package/$name-2.params"
  [[ -f "$params" ]] || { echo "no link parameters for $target at $params" >&2; exit 1; }
  # Bazel's flags, minus the output and the shared system libraries.
  mapfile -t flags < <(grep -v -e '^-l' -e '^-o$' -e "^bazel-out/k8-fastbuild/bin/$package/$name\$" "$params")
  (cd "$execroot" && g++ -o "$out/$name" "${flags[@]}" "${static_group[@]}" \
    -static-libstdc++ -static-libgcc -ldl -lrt -lpthread -lm)
  echo "$out/$name: $(ldd "$out/$name" | awk '{print $1}' | tr '\n' ' ')"
done
