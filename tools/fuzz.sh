#!/usr/bin/env bash
# libFuzzer runs of the parsers and request handlers that take untrusted input: the
# tenants file, the daemon's config and region specs, the metrics port's requests, the
# gRPC request handlers (protobuf messages from the wire, against a real pool), and what
# a client parses from the daemon's answers (layouts, verbs endpoints).
# Each target is built with clang (-fsanitize=fuzzer,address,undefined) against
# Debian's Abseil and run for FUZZ_SECONDS (default 20) from the seeds in
# tests/fuzz/corpus/<target>. A crash, a sanitizer report or a broken invariant fails
# the run and leaves the input under the work directory it prints.
#
#   bash tools/fuzz.sh [TARGET...]      (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
work=$(mktemp -d /tmp/sparsepool-fuzz.XXXXXX)
absl_libs=$(grep -o '"-labsl_[a-z0-9_]*"' third_party/system/BUILD | tr -d '"' | tr '\n' ' ')

declare -A sources=(
  [tenants]="service/tenants.cc common/units.cc common/file_text.cc"
  [daemon_config]="service/daemon_config.cc service/daemon_flags.cc common/command_line.cc transport/cxl/region_spec.cc
    common/units.cc common/key_value_text.cc common/file_text.cc common/log.cc"
  [metrics_request]="service/metrics_http.cc"
  [pool_service]="service/pool_service.cc service/pool.cc service/region_store.cc service/region_access.cc
    service/lease_table.cc service/granule_allocator.cc service/tenants.cc service/delayed_calls.cc
    service/release_watch.cc service/ucx_publisher.cc service/ucx_domain_server.cc service/verbs_acceptor.cc
    service/fair_work_queue.cc
    transport/cxl/region_spec.cc transport/cxl/region_mapping.cc transport/sequence_liveness.cc
    transport/data_plane.cc transport/rdma/ucx_context.cc transport/rdma/read_plan.cc
    transport/rdma/verbs_work_requests.cc transport/rdma/verbs_queue_pair.cc transport/rdma/verbs_plan.cc
    transport/rdma/verbs_endpoint_proto.cc transport/rdma/verbs_device.cc transport/rdma/verbs_data_plane.cc
    common/units.cc common/release_fence.cc common/region_format.cc common/layout_proto.cc common/layout.cc
    common/grpc_status.cc common/file_text.cc common/crc32c.cc common/log.cc
    $work/gen/proto/sparsepool.pb.cc $work/gen/proto/sparsepool.grpc.pb.cc"
  [wire_messages]="common/layout_proto.cc common/layout.cc transport/rdma/verbs_endpoint_proto.cc
    transport/rdma/verbs_plan.cc transport/rdma/verbs_work_requests.cc transport/rdma/read_plan.cc
    $work/gen/proto/sparsepool.pb.cc"
)
declare -A libs=([tenants]="-lcrypto"
  [pool_service]="-lcrypto -lgrpc++ -lgrpc -lgpr -lprotobuf -lucp -luct -lucs -lucm -libverbs -lnuma"
  [wire_messages]="-lprotobuf -libverbs")

targets=("$@")
((${#targets[@]})) || targets=(tenants daemon_config metrics_request pool_service wire_messages)

# The request handlers need the control plane's generated C++, as Bazel makes it.
mkdir -p "$work/gen"
protoc --proto_path=. --cpp_out="$work/gen" --grpc_out="$work/gen" \
  --plugin=protoc-gen-grpc="$(which grpc_cpp_plugin)" proto/sparsepool.proto

failed=0
for t in "${targets[@]}"; do
  [[ -n "${sources[$t]:-}" ]] || { echo "fuzz: unknown target $t" >&2; exit 2; }
  binary="$work/${t}_fuzzer"
  # shellcheck disable=SC2086
  clang++ -std=c++17 -O1 -g -I. -I"$work/gen" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    "tests/fuzz/${t}_fuzzer.cc" ${sources[$t]} -o "$binary" ${libs[$t]:-} $absl_libs -lpthread
  mkdir -p "$work/$t"
  cp tests/fuzz/corpus/"$t"/* "$work/$t"/
  if (cd "$work" && "$binary" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/$t-" \
        "$work/$t" > "$work/$t.log" 2>&1); then
    echo "fuzz $t: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$t.log" | grep -o '[0-9]*$') inputs in ${seconds}s, no finding"
  else
    echo "fuzz $t: FAILED (input and log in $work)"
    tail -30 "$work/$t.log"
    failed=1
  fi
done
((failed)) || rm -rf "$work"
exit "$failed"
