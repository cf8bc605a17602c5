#!/usr/bin/env bash
# Builds one Debian binary package from files Bazel built (deploy/debian/BUILD runs it).
#   build_deb.sh OUT.deb PACKAGE_DIR VERSION_FILE SRC=DEST[:MODE] ...
# PACKAGE_DIR holds control (with @VERSION@, @DEPENDS@, @INSTALLED_SIZE@) and any of
# conffiles, postinst, prerm, postrm. DEST is the installed path; DEST ending in "@"
# makes a symbolic link to SRC instead (SRC then is the link's target). ELF files are
# stripped of debug sections, and their shared-library dependencies become the
# package's Depends (dpkg-shlibdeps: the Debian packages that hold them).
set -euo pipefail
out="$1" package_dir="$2" version="$(tr -d '[:space:]' <"$3")"
shift 3
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -p "$root/DEBIAN"
elf=()
for spec in "$@"; do
  src="${spec%%=*}" rest="${spec#*=}"
  dest="${rest%%:*}" mode=0644
  [[ "$rest" == *:* ]] && mode="${rest##*:}"
  if [[ "$dest" == *@ ]]; then
    dest="${dest%@}"
    mkdir -p "$root$(dirname "$dest")"
    ln -s "$src" "$root$dest"
    continue
  fi
  install -D -m "$mode" "$src" "$root$dest"
  if [[ "$(head -c 4 "$src" | od -An -c | tr -d ' ')" == '177ELF' ]]; then
    strip --strip-debug "$root$dest"
    elf+=("$root$dest")
  fi
done

depends=""
if ((${#elf[@]} > 0)); then
  # dpkg-shlibdeps wants a source tree: a minimal one, in the stage.
  mkdir -p "$stage/src/debian"
  printf 'Source: sparsepool\n\nPackage: sparsepool\nArchitecture: any\n' >"$stage/src/debian/control"
  args=()
  for f in "${elf[@]}"; do args+=(-e"$f"); done
  # The package's own libraries (the client's libsparsepool.so.1) are found in the stage.
  depends="$(cd "$stage/src" && dpkg-shlibdeps -O --ignore-missing-info -l"$root/usr/lib/x86_64-linux-gnu" \
    "${args[@]}" 2>"$stage/shlibdeps.log" | sed -n 's/^shlibs:Depends=//p')" || {
    cat "$stage/shlibdeps.log" >&2
    exit 1
  }
fi
installed_kib="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@DEPENDS@/$depends/" -e "s/@INSTALLED_SIZE@/$installed_kib/" \
  "$package_dir/control" >"$root/DEBIAN/control"
for script in postinst prerm postrm; do
  [[ -f "$package_dir/$script" ]] && install -m 0755 "$package_dir/$script" "$root/DEBIAN/$script"
done
[[ -f "$package_dir/conffiles" ]] && install -m 0644 "$package_dir/conffiles" "$root/DEBIAN/conffiles"
# Files owned by root whoever builds (no fakeroot needed).
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
