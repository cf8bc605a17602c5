#!/usr/bin/env bash
# Builds the Debian packages (issue 16) into dist/:
#   sparsepool-daemon_VERSION_amd64.deb   the memory node: sparsepoold, sparsepoolctl,
#                                         config, systemd units, user (no GPU needed)
#   sparsepool-client_VERSION_amd64.deb   decode workers: libsparsepool.so.1 (C ABI),
#                                         its header and pkg-config file, the Python package
# Install on Debian 12 with: apt install ./dist/sparsepool-daemon_*.deb
# Works with or without the CUDA toolkit (without it the client's GPU calls say so).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh >/dev/null
bazel build //deploy/debian:packages >/dev/null 2>&1 || bazel build //deploy/debian:packages
version="$(tr -d '[:space:]' <VERSION)"
mkdir -p dist
for name in daemon client; do
  install -m 0644 "bazel-bin/deploy/debian/sparsepool-${name}_amd64.deb" "dist/sparsepool-${name}_${version}_amd64.deb"
  echo "dist/sparsepool-${name}_${version}_amd64.deb"
done
