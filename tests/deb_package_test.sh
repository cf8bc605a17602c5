#!/usr/bin/env bash
# The Debian packages (deploy/debian, issue 16), as an operator and an engine would use
# them, without touching this host's system: each package's control data and files are
# checked, apt resolves installing both on this Debian 12 (simulated), both are unpacked
# into a scratch root (dpkg -x) with their maintainer scripts checked, the installed
# daemon starts from the installed config (flags naming a scratch region and port),
# serves sparsepoolctl and a C program built against the installed header, library and
# pkg-config file (no Bazel involved), serves the installed Python package, and stops on
# SIGTERM with exit status 0.
set -euo pipefail
daemon_deb="$(readlink -f deploy/debian/sparsepool-daemon_amd64.deb)"
client_deb="$(readlink -f deploy/debian/sparsepool-client_amd64.deb)"
work="$(mktemp -d "${TEST_TMPDIR:-/tmp}/deb-test.XXXXXX")"
root="$work/root"
region="/dev/shm/sparsepool-deb-test-$$"
daemon_pid=""
cleanup() {
  [[ -n "$daemon_pid" ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -f "$region"
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
check_field() {  # DEB FIELD EXPECTED-SUBSTRING
  local value
  value="$(dpkg-deb --field "$1" "$2")"
  [[ "$value" == *"$3"* ]] || fail "$(basename "$1"): $2 is \"$value\", wants \"$3\""
}

echo "== control data"
check_field "$daemon_deb" Package sparsepool-daemon
check_field "$daemon_deb" Architecture amd64
check_field "$daemon_deb" Version "$(tr -d '[:space:]' <VERSION)"
check_field "$daemon_deb" Depends "libgrpc++1.51"
check_field "$daemon_deb" Depends "libucx0"
check_field "$daemon_deb" Depends "libnuma1"
check_field "$client_deb" Package sparsepool-client
check_field "$client_deb" Depends "libgrpc++1.51"
# (Whole outputs into variables, then matched: grep -q in a pipe closes it early, and
# under pipefail the writer's SIGPIPE would read as a failure.)
conffiles="$(dpkg-deb --ctrl-tarfile "$daemon_deb" | tar -xO ./conffiles)"
[[ "$conffiles" == */etc/sparsepool/sparsepoold.conf* ]] || fail "the daemon's config is not a conffile"

echo "== apt resolves both on this host (simulated: nothing installed)"
apt-get install --simulate --no-install-recommends "$daemon_deb" "$client_deb" >"$work/apt.log" 2>&1 ||
  { cat "$work/apt.log"; fail "apt-get install --simulate refused the packages"; }
grep -q "^Inst sparsepool-daemon" "$work/apt.log" || { cat "$work/apt.log"; fail "apt would not install the daemon"; }
grep -q "^Inst sparsepool-client" "$work/apt.log" || { cat "$work/apt.log"; fail "apt would not install the client"; }

echo "== unpacked into a scratch root"
dpkg -x "$daemon_deb" "$root"
dpkg -x "$client_deb" "$root"
for f in usr/bin/sparsepoold usr/bin/sparsepoolctl etc/sparsepool/sparsepoold.conf \
         lib/systemd/system/sparsepoold.service lib/systemd/system/var-lib-sparsepool-huge.mount \
         usr/share/doc/sparsepool-daemon/examples/sparsepoold.conf usr/include/sparsepool/sparsepool.h \
         usr/lib/x86_64-linux-gnu/libsparsepool.so.1 usr/lib/x86_64-linux-gnu/pkgconfig/sparsepool.pc \
         usr/lib/python3/dist-packages/sparsepool/__init__.py; do
  [[ -e "$root/$f" ]] || fail "/$f is not in the packages"
done
[[ "$(readlink "$root/usr/lib/x86_64-linux-gnu/libsparsepool.so")" == libsparsepool.so.1 ]] ||
  fail "libsparsepool.so does not point at libsparsepool.so.1"
dynamic="$(readelf -d "$root/usr/lib/x86_64-linux-gnu/libsparsepool.so.1")"
[[ "$dynamic" == *"Library soname: [libsparsepool.so.1]"* ]] || fail "libsparsepool.so.1 has no soname libsparsepool.so.1"
[[ "$(stat -c %a "$root/etc/sparsepool/sparsepoold.conf")" == 640 ]] || fail "the config is not mode 0640"
grep -q '^User=sparsepool$' "$root/lib/systemd/system/sparsepoold.service" || fail "the unit does not run as sparsepool"
grep -q '^ExecStart=/usr/bin/sparsepoold --config=/etc/sparsepool/sparsepoold.conf$' \
  "$root/lib/systemd/system/sparsepoold.service" || fail "the unit does not start the installed daemon"
mkdir "$work/control"
dpkg-deb --control "$daemon_deb" "$work/control"
for script in postinst postrm; do
  [[ -x "$work/control/$script" ]] || fail "$script is missing or not executable"
  sh -n "$work/control/$script" || fail "$script does not parse"
done
grep -q 'useradd --system' "$work/control/postinst" || fail "postinst makes no system user"

echo "== the installed daemon, from the installed config"
port_file="$work/port"
"$root/usr/bin/sparsepoold" --config="$root/etc/sparsepool/sparsepoold.conf" --listen=127.0.0.1:0 \
  --region="shm:$region:64MiB" --metrics_listen=127.0.0.1:0 --port_file="$port_file" 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 300); do [[ -s "$port_file" ]] && break; sleep 0.1; done
[[ -s "$port_file" ]] || { cat "$work/daemon.log"; fail "the installed daemon did not start"; }
address="127.0.0.1:$(cat "$port_file")"
health="$("$root/usr/bin/sparsepoolctl" --address="$address" health)" || fail "sparsepoolctl health failed"
[[ "$health" == *serving* ]] || fail "sparsepoolctl health did not report a serving daemon: $health"

echo "== a C program built against the installed client, without Bazel"
cat >"$work/app.c" <<'C'
#include <sparsepool/sparsepool.h>
#include <stdio.h>
#include <string.h>
#define CHECK(call) do { if ((call) != SP_OK) { fprintf(stderr, "%s: %s\n", #call, sp_last_error()); return 1; } } while (0)
int main(int argc, char** argv) {
  sp_client_options options;
  sp_client_options_init(&options);
  options.address = argv[1];
  sp_client* client = NULL;
  CHECK(sp_client_connect(&options, &client));
  sp_sequence_spec spec;
  sp_sequence_spec_init(&spec);
  spec.layers = 2;
  spec.entry_bytes = 656;
  spec.tokens = 100;
  uint64_t sequence = 0;
  CHECK(sp_sequence_create(client, &spec, &sequence));
  static unsigned char entries[100 * 656], out[3 * 656];
  for (size_t i = 0; i < sizeof(entries); ++i) entries[i] = (unsigned char)(i * 7 + i / 656);
  CHECK(sp_write_entries(client, sequence, 1, 0, entries, sizeof(entries)));
  const int32_t indices[3] = {99, 0, 42};
  CHECK(sp_fetch_topk(client, 1, &sequence, 1, indices, 3, out, sizeof(out)));
  for (int i = 0; i < 3; ++i) {
    if (memcmp(out + i * 656, entries + indices[i] * 656, 656) != 0) { fprintf(stderr, "entry %d differs\n", indices[i]); return 1; }
  }
  CHECK(sp_sequence_release(client, sequence));
  sp_client_close(client);
  printf("fetched 3 entries as written (ABI %d)\n", sp_abi_version());
  return 0;
}
C
export PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_LIBDIR="$root/usr/lib/x86_64-linux-gnu/pkgconfig"
# shellcheck disable=SC2046
cc -o "$work/app" "$work/app.c" $(pkg-config --cflags --libs sparsepool) || fail "the C program did not build"
LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu" "$work/app" "$address" || fail "the C program failed"

echo "== the installed Python package"
PYTHONPATH="$root/usr/lib/python3/dist-packages" SPARSEPOOL_LIBRARY="$root/usr/lib/x86_64-linux-gnu/libsparsepool.so.1" \
  /usr/bin/python3 - "$address" <<'PY' || fail "the Python package failed"
import sys
import numpy as np
import sparsepool
client = sparsepool.Client(sys.argv[1])
sequence = client.create_sequence(layers=1, entry_bytes=656, tokens=10)
entries = np.arange(10 * 656, dtype=np.uint32).astype(np.uint8).reshape(10, 656)
client.write(sequence, 0, 0, entries)
out = client.fetch_topk(0, [sequence], np.array([[7, 2]], dtype=np.int32))
assert np.array_equal(np.asarray(out).reshape(2, 656), entries[[7, 2]]), "fetched entries differ"
client.release(sequence)
print("python: fetched 2 entries as written")
PY

echo "== SIGTERM stops the installed daemon"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=""
((rc == 0)) || { cat "$work/daemon.log"; fail "the daemon exited with $rc on SIGTERM"; }
echo "PASS"
