#!/usr/bin/env bash
# On the device machine: the Python package's tests with torch CUDA, and the sparse MLA
# decode example at DeepSeek-V3.2's shape (61 layers, top-2048) with and without the
# residency cache. Pack here first (bash tools/python_bundle.sh; bash tools/gpu_pack.sh):
#   device run: bash tools/python_device_check.sh        carry: [".device"]
set -uo pipefail
cd "$(dirname "$0")/.."
logs="${OUT:-/tmp}"
root=/tmp/sparsepool-python
rm -rf "$root" && mkdir -p "$root/bin"
tar xJf .device/python.tar.xz -C "$root"
tar xJf .device/bin.tar.xz -C "$root/bin"
export PYTHONPATH="$root/python" SPARSEPOOLD="$root/bin/sparsepoold" PYTHONUNBUFFERED=1
python3 -c "import sys, torch, sparsepool; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())"
status=0
(cd "$root" && python3 -m pytest -q -p no:cacheprovider python/tests examples) 2>&1 | tee "$logs/pytest.log" | tail -8
((PIPESTATUS[0] == 0)) || status=1
source tools/local_daemon.sh
export SPARSEPOOLD
start_local_daemon sparsepool-example "${REGION_SIZE:-8GiB}"
for cache in 0 4096; do
  python3 examples/sparse_mla_decode.py --address="$address" --device=cuda --layers=61 --contexts=4096,6000,8192,5000 \
    --k=2048 --heads=16 --steps="${STEPS:-10}" --cache_slots=$cache 2>&1 | tee -a "$logs/example.log"
  ((PIPESTATUS[0] == 0)) || status=1
done
exit $status
