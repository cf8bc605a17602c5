#!/usr/bin/env bash
# Makes the Python package self-contained for a machine without Debian's libraries (the
# device machine): libsparsepool.so and every shared library it needs but glibc's and
# the C++ runtime's (the target has its own, newer) go into python/sparsepool/_lib, with
# their run path set to $ORIGIN (what auditwheel does for wheels). Then packs the package
# into .device/python.tar.xz for the device tool to carry.
#   bash tools/python_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v patchelf >/dev/null || { echo "python_bundle: patchelf is missing (apt-get install patchelf)" >&2; exit 1; }
bash tools/python_build.sh >/dev/null
lib_dir=python/sparsepool/_lib
system='^(linux-vdso|libc|libm|libdl|libpthread|librt|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so'
ldd "$lib_dir/libsparsepool.so" | awk '/=> \// {print $1, $3}' | while read -r name path; do
  if [[ "$name" =~ $system ]]; then continue; fi
  install -m 0755 "$path" "$lib_dir/$name"
done
for so in "$lib_dir"/*.so*; do patchelf --set-rpath '$ORIGIN' "$so"; done
mkdir -p .device
tar cJf .device/python.tar.xz --exclude=__pycache__ python/pyproject.toml python/README.md python/sparsepool python/tests examples
ls -la .device/python.tar.xz
echo "bundled $(ls "$lib_dir" | wc -l) libraries into $lib_dir"
