#!/usr/bin/env bash
# Every binary's --help exits 0 and lists every flag its sources define (issue 15).
#   help_test.sh BINARY=SOURCE[,SOURCE...] ...
# The flags expected are read from the sources' ABSL_FLAG lines, so a flag added later
# is checked too.
set -uo pipefail
failed=0
for pair in "$@"; do
  binary="${pair%%=*}"
  IFS=, read -ra sources <<<"${pair#*=}"
  name="$(basename "$binary")"
  output="$("$binary" --help 2>&1)"
  rc=$?
  if ((rc != 0)); then
    echo "FAIL $name --help exited $rc:"; echo "$output" | head -20
    failed=1
    continue
  fi
  mapfile -t flags < <(grep -ho 'ABSL_FLAG([^,]*, *[a-z_0-9]*' "${sources[@]}" | sed 's/.*, *//')
  if ((${#flags[@]} == 0)); then
    echo "FAIL $name: no ABSL_FLAG found in ${sources[*]}"
    failed=1
    continue
  fi
  missing=()
  for flag in "${flags[@]}"; do
    grep -q -- "--$flag " <<<"$output" || missing+=("--$flag")
  done
  if ((${#missing[@]})); then
    echo "FAIL $name --help does not list: ${missing[*]}"
    failed=1
  else
    echo "ok   $name --help: exit 0, ${#flags[@]} flags listed"
  fi
done
exit $failed
