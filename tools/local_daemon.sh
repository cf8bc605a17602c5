# Sourced by the demo and bench scripts: starts sparsepoold on a shared-memory region
# of the size given, on a free loopback port, and stops it (removing the region) when
# the calling script exits. Sets $address. Further arguments go to sparsepoold;
# $SPARSEPOOLD names another binary (the device machine runs a static one).
#   start_local_daemon NAME SIZE [FLAG...]
start_local_daemon() {
  local name="$1-$$" size="$2"
  shift 2
  local_daemon_region="/dev/shm/$name"
  local_daemon_port_file="$(mktemp)"
  local_daemon_log="$(mktemp)"
  trap stop_local_daemon EXIT
  "${SPARSEPOOLD:-bazel-bin/service/sparsepoold}" --listen=127.0.0.1:0 --region="shm:$name:$size" \
    --port_file="$local_daemon_port_file" "$@" 2>"$local_daemon_log" &
  local_daemon_pid=$!
  # The daemon allocates its region before it serves: about 1.3 s for 4 GiB on a 2-vCPU VM.
  for _ in $(seq 300); do [[ -s "$local_daemon_port_file" ]] && break; sleep 0.1; done
  if [[ ! -s "$local_daemon_port_file" ]]; then
    cat "$local_daemon_log"
    echo "sparsepoold did not start" >&2
    exit 1
  fi
  address="127.0.0.1:$(cat "$local_daemon_port_file")"
}

stop_local_daemon() {
  if [[ -n "${local_daemon_pid:-}" ]]; then
    kill "$local_daemon_pid" 2>/dev/null && wait "$local_daemon_pid" 2>/dev/null
  fi
  rm -f "$local_daemon_region" "$local_daemon_port_file" "$local_daemon_log"
}
