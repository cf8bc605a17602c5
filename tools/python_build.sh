#!/usr/bin/env bash
# Builds the C ABI library and puts it into the Python package (python/sparsepool/_lib),
# which pip then installs from the repository offline:
#   bash tools/python_build.sh
#   python3 -m pip install --no-build-isolation --no-index ./python
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build //client/c:libsparsepool.so >/dev/null 2>&1 || bazel build //client/c:libsparsepool.so
mkdir -p python/sparsepool/_lib
install -m 0755 bazel-bin/client/c/libsparsepool.so python/sparsepool/_lib/libsparsepool.so
echo "python/sparsepool/_lib/libsparsepool.so"
