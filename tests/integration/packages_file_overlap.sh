#!/usr/bin/env bash
# dpkg's rule on shared paths, whatever the layering: two packages that ship
# the same file (dup-a and dup-b both ship /usr/share/dup/file, neither
# Replaces the other) are refused with exit 1, naming the path and both
# packages at the include that brings them, and nothing is written; a package
# that Replaces the other (dup-c Replaces dup-a (<< 2)) takes the file over
# and both install, with the same files from every layering:
#   kiln build T.yaml   # include: [dup-a, dup-b] -> refused; [dup-a, dup-c] -> ok
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=/dev/null
source "${KILN_APT_FIXTURE:?the APT fixture dir (tests/fixtures/aptrepo.sh start DIR)}/env"
# shellcheck source=../apt_lib.sh
source "$(dirname "$0")/../apt_lib.sh"
need_tool umoci

S=$T/store
for layering in single per-package "grouped
  maxLayers: 2"; do
  name=${layering%%$'\n'*}
  step "layering $name: dup-a and dup-b both ship /usr/share/dup/file -> refused"
  pkg_template "$T/$name/kiln.yaml" "dup-$name" "dup-a, dup-b" "layering: $layering"
  "$KILN" --store "$S" lock "$T/$name/kiln.yaml" >/dev/null 2>&1 || fail "kiln lock failed"
  before=$(store_fingerprint "$S")
  expect_error 1 "/usr/share/dup/file" "$KILN" --store "$S" build "$T/$name/kiln.yaml" --locked
  assert_contains "$ERR" "dup-a" "the error names dup-a"
  assert_contains "$ERR" "dup-b" "the error names dup-b"
  assert_contains "$ERR" "$T/$name/kiln.yaml:11:20: packages dup-a 1.0-1 and dup-b 1.0-1 both ship /usr/share/dup/file, and neither Replaces the other" \
    "the error is at the include of dup-b (pkg_template's line 11)"
  # The package cache may have filled (and gc.lock appears); no image, no layer.
  assert_eq "$(grep -v -e '/kiln/cache' -e '/kiln/gc.lock' <<<"$before")" "$(store_fingerprint "$S" | grep -v -e '/kiln/cache' -e '/kiln/gc.lock')" \
    "store after the refused build (the package cache and gc.lock aside)"
done

# dup-c Replaces dup-a (<< 2): dup-c owns the file, dup-a keeps the rest.
for layering in single per-package "grouped
  maxLayers: 2"; do
  name=${layering%%$'\n'*}
  step "layering $name: dup-c Replaces dup-a -> dup-c's file, both installed"
  pkg_template "$T/r-$name/kiln.yaml" "dupr" "dup-a, dup-c" "layering: $layering"
  build_digest --store "$S" build "$T/r-$name/kiln.yaml" --replace >/dev/null
  umoci unpack --rootless --image "$S:dupr:1.0.0" "$T/b-$name" >/dev/null 2>"$T/umoci.err" ||
    fail "umoci unpack failed: $(cat "$T/umoci.err")"
  R=$T/b-$name/rootfs
  assert_eq dup-c "$(cat "$R/usr/share/dup/file")" "layering $name: the replacing package's file"
  assert_eq dup-a "$(cat "$R/usr/share/dup-a/own")" "layering $name: dup-a's own file"
  assert_eq dup-c "$(cat "$R/usr/share/dup-c/own")" "layering $name: dup-c's own file"
  assert_eq "dup-a
dup-c" "$(status_d "$S" dupr:1.0.0 | grep -v md5sums)" "layering $name: both in status.d"
  rm -rf "$T/b-$name"
done
