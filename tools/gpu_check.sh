#!/usr/bin/env bash
# On the device machine: the GPU tests (kernels, residency cache, GpuFetcher, the decode
# session against a real daemon), compute-sanitizer over some of them, the decode step
# benchmark, the gather benchmark and overlap example, and the gather over extent
# layouts or after allocator churn. Build and pack here first:
#   bash tools/gpu_pack.sh          (static binaries into .device/bin.tar.xz)
#   device run: bash tools/gpu_check.sh [tests|sanitize|bench|serve|gather|extents|churn|load ...]   carry: [".device"]
# (no part named: tests). Knobs in the environment: BENCH_FLAGS, SERVE_FLAGS, REGION_SIZE,
# BIG_GIB, EXTENTS, CHURN_OPS, SANITIZE_TIMEOUT, LOAD_SECONDS, LOAD_FLOOD, LOAD_ONLY_GPU (the GPU path's
# 64 streams, plain and cached, beside the CPU path's, instead of the contention runs), LOAD_MPS (the GPU
# path with and without CUDA MPS: 64 streams, and a quiet tenant beside a flood; the CPU path's 64 streams),
# LOAD_CORES (the quiet tenant beside a flood, on shared cores and on cores of its own, both paths;
# with fetches paced: LOAD_PACE and LOAD_PACE2 on the CPU path, LOAD_GPU_PACE on the GPU's, LOAD_FLOOD_PACE
# for the flooding tenant alone on both), LOAD_FAULTS (faults under load on the GPU path, the CPU path's beside;
# LOAD_FAULT_LIST, LOAD_FAULT_INTERVAL), LOAD_SHARES (equal fetch rates for every tenant, split or one pacer a
# tenant with longer bursts; LOAD_SHARE_RATE, LOAD_SHARE_BURST).
# LOAD_ONLY="name ...": only the load runs so named.
# Logs go to $OUT (or /tmp) and a summary to stdout.
set -uo pipefail
cd "$(dirname "$0")/.."
logs="${OUT:-/tmp}"
run_dir=/tmp/sparsepool-gpu
rm -rf "$run_dir" && mkdir -p "$run_dir/bin" "$run_dir/service"
tar xJf .device/bin.tar.xz -C "$run_dir/bin"
cp "$run_dir/bin/sparsepoold" "$run_dir/service/sparsepoold"  # where the tests start it from
parts=("${@:-tests}")
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
for part in "${parts[@]}"; do
  case "$part" in
    tests)
      # bench_test: its request-level runs, where the GPU strategies join the CPU ones.
      for t in gpu_gather_test gpu_residency_test gpu_fetcher_test decode_session_test device_fetch_test bench_test; do
        filter='*'
        [[ $t == bench_test ]] && filter='*Request*'
        (cd "$run_dir" && TEST_TMPDIR=/tmp timeout 300 "bin/$t" --gtest_filter="$filter") >"$logs/$t.log" 2>&1
        rc=$?
        echo "$t: exit $rc; $(grep -E '^\[  (PASSED|FAILED) ' "$logs/$t.log" | tr '\n' ' ')"
        ((rc == 0)) || { status=1; grep -B2 -A12 'Failure' "$logs/$t.log" | head -60; }
      done
      ;;
    sanitize)
      cs=/usr/local/cuda/bin/compute-sanitizer
      for check in "memcheck gpu_gather_test *" "memcheck decode_session_test *Bad*:*Released*:*Captured*" \
                   "memcheck gpu_residency_test *Faults*" "racecheck gpu_residency_test *Faults*" \
                   "racecheck decode_session_test *Bad*residency_cache"; do
        read -r tool t filter <<<"$check"
        name="sanitize_${tool}_$t"
        (cd "$run_dir" && TEST_TMPDIR=/tmp timeout "${SANITIZE_TIMEOUT:-150}" "$cs" --tool "$tool" --error-exitcode 9 "bin/$t" \
          --gtest_filter="$filter") >"$logs/$name.log" 2>&1
        rc=$?
        echo "$tool $t ($filter): exit $rc; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$logs/$name.log" | tail -1)"
        ((rc == 0)) || status=1
      done
      ;;
    bench)
      export SPARSEPOOLD="$run_dir/bin/sparsepoold"
      source tools/local_daemon.sh
      start_local_daemon sparsepool-session-bench "${REGION_SIZE:-24GiB}"
      echo "sparsepoold on $address (${REGION_SIZE:-24GiB} shm region)"
      "$run_dir/bin/sparsepool_decode_step_bench" --address="$address" ${BENCH_FLAGS:-} 2>&1 | tee "$logs/decode_step_bench.log"
      ((PIPESTATUS[0] == 0)) || status=1
      stop_local_daemon
      ;;
    serve)
      # The request-level comparison, every strategy, on a daemon published over UCX (tcp).
      export SPARSEPOOLD="$run_dir/bin/sparsepoold" UCX_TLS=tcp
      source tools/local_daemon.sh
      start_local_daemon sparsepool-serve-bench "${REGION_SIZE:-24GiB}" --ucx=true
      echo "sparsepoold on $address (${REGION_SIZE:-24GiB} shm region, UCX over tcp)"
      "$run_dir/bin/sparsepool_serve_bench" --address="$address" --out="$logs/serve" ${SERVE_FLAGS:-} 2>&1 |
        tee "$logs/serve_bench.log"
      ((PIPESTATUS[0] == 0)) || status=1
      stop_local_daemon
      ;;
    churn)
      "$run_dir/bin/sparsepool_gpu_gather_bench" --big_gib="${BIG_GIB:-32}" --churn="${CHURN_OPS:-100000}" \
        2>&1 | tee "$logs/gather_churn.log"
      ((PIPESTATUS[0] == 0)) || status=1
      ;;
    gather)
      "$run_dir/bin/sparsepool_gpu_gather_bench" --big_gib="${BIG_GIB:-32}" 2>&1 | tee "$logs/gpu_bench.log"
      ((PIPESTATUS[0] == 0)) || status=1
      "$run_dir/bin/sparsepool_gpu_overlap_example" 2>&1 | tee "$logs/gpu_overlap.log"
      ((PIPESTATUS[0] == 0)) || status=1
      ;;
    extents)
      "$run_dir/bin/sparsepool_gpu_gather_bench" --big_gib="${BIG_GIB:-32}" --extents="${EXTENTS:-1,16,64,2048}" \
        2>&1 | tee "$logs/gather_extents.log"
      ((PIPESTATUS[0] == 0)) || status=1
      ;;
    load)
      # Contention control (issue 14): a quiet tenant alone, then beside a flooding one
      # with the control off and on; 64 streams with it off and on. The host's 16 cores
      # are the contended resource: the flood runs more workers than there are cores.
      region="${REGION_SIZE:-16GiB}"
      rm -rf /dev/shm/sparsepool-load-*  # runs killed by a timeout leave their workers' directories
      load_common=(--seconds="${LOAD_SECONDS:-15}" --context=8192 --layers=4 --k=2048 --churn=16)
      run_load() {
        local name=$1
        shift
        [[ -z "${LOAD_ONLY:-}" || " $LOAD_ONLY " == *" $name "* ]] || return 0
        local out="/tmp/load-$name"
        rm -rf "$out" "/dev/shm/sp-load-$name"
        local daemon="$run_dir/bin/sparsepoold --region=shm:/dev/shm/sp-load-$name:$region"
        "$run_dir/bin/sparsepool_load" --daemon="$daemon${daemon_flags:+ $daemon_flags}" \
          "${load_common[@]}" "$@" --out="$out" >"$logs/load_$name.log" 2>&1
        local rc=$?
        rm -f "/dev/shm/sp-load-$name"
        cp "$out/results.md" "$logs/load_$name.md" 2>/dev/null
        echo "load $name ($*): exit $rc"
        ((rc == 0)) || { status=1; tail -5 "$logs/load_$name.log"; }
        grep -E '^sparsepool-load|^Requests that left|^\| (all|tenant)' "$out/results.md" 2>/dev/null | sed 's/^sparsepool-load: .*transport, /  /'
      }
      flood="${LOAD_FLOOD:-31}"
      daemon_flags=""
      if [[ -n "${LOAD_FAULTS:-}" ]]; then
        # Faults under load on the GPU path (issue 14): the daemon killed and restarted,
        # a worker killed mid-step, the pool filled, twice each, every one followed by
        # the check of every live sequence against the workers' ledgers; with the
        # residency cache and under MPS too, and the CPU path's run beside. A lease of
        # 2 s, so that a killed worker's sequences are reclaimed within the run.
        daemon_flags="--lease_timeout=2s"
        faults=(--faults="${LOAD_FAULT_LIST:-daemon-kill,worker-kill,fill,daemon-kill,worker-kill,fill}"
          --fault_interval="${LOAD_FAULT_INTERVAL:-3s}" --outage=1s --rpc_timeout=2s)
        run_load gpu-faults --path=gpu --tenants=acme:1,globex:3 --requests=4 "${faults[@]}"
        run_load gpu-faults-cache --path=gpu --cache_slots=4096 --workers=4 --requests=4 "${faults[@]}"
        run_load gpu-faults-mps --path=gpu --mps --workers=4 --requests=4 "${faults[@]}"
        # A reserve of 32 tokens (some 40 ms of steps) instead of 1024: the daemon's
        # outage and the full pool reach the rows, which leave their steps and join again
        # (the results count them).
        run_load gpu-faults-rejoin --path=gpu --workers=4 --requests=4 --reserve_tokens=32 "${faults[@]}"
        run_load cpu-faults --tenants=acme:1,globex:3 --requests=4 "${faults[@]}"
        # The link to the daemon's host cut for a second needs iproute2 and root.
        if [[ -x /usr/sbin/ip && $(id -u) -eq 0 ]]; then
          daemon_flags="--lease_timeout=6s"  # the leases cross the link too
          run_load gpu-net-cut --path=gpu --workers=4 --requests=4 --faults=net-cut,net-cut \
            --fault_interval="${LOAD_FAULT_INTERVAL:-3s}" --outage=1s --rpc_timeout=2s
        else
          echo "load gpu-net-cut: skipped, it needs iproute2 (/usr/sbin/ip) and root"
        fi
        daemon_flags=""
        continue
      fi
      if [[ -n "${LOAD_SHARES:-}" ]]; then
        # Equal shares (every tenant the same rate, LOAD_SHARE_RATE): split among each
        # tenant's workers with 1 ms bursts, against one pacer a tenant
        # (--tenant_fetch_shared) with longer bursts (LOAD_SHARE_BURST), which let the
        # quiet tenant's steps through back to back while the flood's average keeps to
        # its rate. Both paths, the quiet tenant alone first.
        # The longer burst alone (split) beside it tells the two changes apart.
        share=(--tenant_fetch_rate="${LOAD_SHARE_RATE:-6GiB}")
        burst=(--tenant_fetch_burst="${LOAD_SHARE_BURST:-20ms}")
        gflood="${LOAD_FLOOD:-15}"
        run_load quiet-alone --tenants=quiet:1 --requests=4
        run_load flood-equal-split --tenants=quiet:1,flood:"$flood" --requests=4 "${share[@]}"
        run_load flood-equal-split-burst --tenants=quiet:1,flood:"$flood" --requests=4 "${share[@]}" "${burst[@]}"
        run_load flood-equal-shared --tenants=quiet:1,flood:"$flood" --requests=4 "${share[@]}" "${burst[@]}" \
          --tenant_fetch_shared
        run_load gpu-quiet-alone --path=gpu --tenants=quiet:1 --requests=4
        for variant in split split-burst shared; do
          extra=()
          [[ $variant != split ]] && extra+=("${burst[@]}")
          [[ $variant == shared ]] && extra+=(--tenant_fetch_shared)
          run_load gpu-flood-equal-"$variant" --path=gpu --mps --tenants=quiet:1,flood:"$gflood" --requests=4 \
            "${share[@]}" "${extra[@]}"
        done
        continue
      fi
      if [[ -n "${LOAD_MPS:-}" ]]; then
        # The GPU path under CUDA MPS (the tool's own control daemon): 64 streams
        # time-sliced and side by side; a quiet tenant alone, beside a flooding one with
        # no control, under MPS uncapped, and with the control on (CPU groups, MPS caps).
        gflood="${LOAD_FLOOD:-15}"
        run_load gpu16 --path=gpu --workers=16 --requests=4
        run_load gpu16-mps --path=gpu --mps --workers=16 --requests=4
        run_load gpu-quiet-alone --path=gpu --tenants=quiet:1 --requests=4
        run_load gpu-flood-off --path=gpu --tenants=quiet:1,flood:"$gflood" --requests=4 --control=false
        run_load gpu-flood-mps-off --path=gpu --mps --tenants=quiet:1,flood:"$gflood" --requests=4 --control=false
        run_load gpu-flood-mps-on --path=gpu --mps --tenants=quiet:1,flood:"$gflood" --requests=4
        # The CPU path's 64 streams beside them: 16 workers of 4, and 8 of 8.
        run_load cpu16 --workers=16 --requests=4
        run_load cpu8x8 --workers=8 --requests=8
        continue
      fi
      if [[ -n "${LOAD_CORES:-}" ]]; then
        # The quiet tenant beside a flood with the control on, its CPU time capped on
        # cores all tenants share against cores of its own (--tenant_cores), on both paths;
        # and each tenant's fetches paced (--tenant_fetch_rate: LOAD_PACE and LOAD_PACE2 on the
        # CPU path, LOAD_GPU_PACE on the GPU's).
        run_load quiet-alone --tenants=quiet:1 --requests=4
        run_load flood-on-shared --tenants=quiet:1,flood:"$flood" --requests=4 --tenant_cores=false
        run_load flood-on --tenants=quiet:1,flood:"$flood" --requests=4
        run_load flood-on-paced --tenants=quiet:1,flood:"$flood" --requests=4 --tenant_fetch_rate="${LOAD_PACE:-8GiB}"
        run_load flood-on-paced2 --tenants=quiet:1,flood:"$flood" --requests=4 --tenant_fetch_rate="${LOAD_PACE2:-5GiB}"
        gflood="${LOAD_FLOOD:-15}"
        run_load gpu-quiet-alone --path=gpu --tenants=quiet:1 --requests=4
        run_load gpu-flood-mps-on-shared --path=gpu --mps --tenants=quiet:1,flood:"$gflood" --requests=4 --tenant_cores=false
        run_load gpu-flood-mps-on --path=gpu --mps --tenants=quiet:1,flood:"$gflood" --requests=4
        run_load gpu-flood-mps-on-paced --path=gpu --mps --tenants=quiet:1,flood:"$gflood" --requests=4 \
          --tenant_fetch_rate="${LOAD_GPU_PACE:-7GiB}"
        # The flood alone held to a rate (LOAD_FLOOD_PACE), the quiet tenant not: an
        # operator's rate for a tenant that floods, on both paths.
        run_load flood-on-flood-paced --tenants=quiet:1,flood:"$flood" --requests=4 \
          --tenant_fetch_rate=flood:"${LOAD_FLOOD_PACE:-4GiB}"
        run_load gpu-flood-mps-on-flood-paced --path=gpu --mps --tenants=quiet:1,flood:"$gflood" --requests=4 \
          --tenant_fetch_rate=flood:"${LOAD_FLOOD_PACE:-4GiB}"
        continue
      fi
      if [[ -n "${LOAD_ONLY_GPU:-}" ]]; then
        run_load gpu16 --path=gpu --workers=16 --requests=4
        run_load gpu16-cache --path=gpu --cache_slots=4096 --workers=16 --requests=4
        run_load cpu16 --workers=16 --requests=4
        continue
      fi
      run_load quiet-alone --tenants=quiet:1 --requests=4
      run_load flood-off --tenants=quiet:1,flood:"$flood" --requests=4 --control=false
      run_load flood-on --tenants=quiet:1,flood:"$flood" --requests=4
      run_load streams64-off --workers=16 --requests=4 --control=false
      run_load streams64-on --workers=16 --requests=4
      run_load streams64x1-off --workers=64 --requests=1 --control=false
      run_load streams64x1-on --workers=64 --requests=1
      ;;
    *) echo "unknown part $part" >&2; status=2 ;;
  esac
done
exit $status
