# Sourced by the demo and bench scripts: starts sparsepoold on a free loopback port and
# sets $address. $SPARSEPOOLD names another binary (the device machine runs a static one).
#   start_local_daemon NAME SIZE [FLAG...]
#       on a shared-memory region of that size, stopped (and the region removed) when
#       the calling script exits;
#   start_daemon_on REGION_SPEC [FLAG...]
#       on any region (see sparsepoold --help); the caller stops it with
#       stop_local_daemon and removes the region itself.
# Further arguments go to sparsepoold.
start_local_daemon() {
  local name="$1-$$" size="$2"
  shift 2
  local_daemon_region="/dev/shm/$name"
  trap stop_local_daemon EXIT
  start_daemon_on "shm:$name:$size" "$@"
}

start_daemon_on() {
  local region="$1"
  shift
  local_daemon_port_file="$(mktemp)"
  local_daemon_log="$(mktemp)"
  "${SPARSEPOOLD:-bazel-bin/service/sparsepoold}" --listen=127.0.0.1:0 --region="$region" \
    --port_file="$local_daemon_port_file" "$@" 2>"$local_daemon_log" &
  local_daemon_pid=$!
  # The daemon allocates its region before it serves: about 1.3 s for 4 GiB of shm on a
  # 2-vCPU VM, over 10 s for 4 GiB of huge pages the VM's host had never handed out.
  for _ in $(seq 600); do [[ -s "$local_daemon_port_file" ]] && break; sleep 0.1; done
  if [[ ! -s "$local_daemon_port_file" ]]; then
    cat "$local_daemon_log"
    echo "sparsepoold did not start" >&2
    exit 1
  fi
  address="127.0.0.1:$(cat "$local_daemon_port_file")"
}

stop_local_daemon() {
  if [[ -n "${local_daemon_pid:-}" ]]; then
    kill "$local_daemon_pid" 2>/dev/null && wait "$local_daemon_pid" 2>/dev/null || true
  fi
  local_daemon_pid=""
  rm -f "${local_daemon_region:-}" "${local_daemon_port_file:-}" "${local_daemon_log:-}"
}
